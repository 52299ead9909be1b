//! The optimizer on the bundled model: the driver applies the same rewrites and reaches the
//! same graph as the reference driver (whole-graph inference and a restart after every
//! rewrite), and constant folding as its own pass gives what folding inside `simplify` gave.

use sinter_ir::{DType, Fact, Graph};
use sinter_optimizer::{optimize, optimize_reference, rules::default_passes, Options, Pass, Report};
use std::collections::HashMap;
use std::path::Path;

const BUNDLED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/ch_ppocr_mobile_v2.0_cls_infer.onnx");

fn bundled() -> (Graph, HashMap<String, Fact>) {
    let model = sinter_onnx::load_model(Path::new(BUNDLED)).expect("bundled model loads");
    let inputs = HashMap::from([("x".to_string(), Fact::new(DType::F32, [1, 3, 48, 192]))]);
    (model.graph, inputs)
}

fn nodes(g: &Graph) -> Vec<String> {
    g.nodes
        .iter()
        .map(|n| {
            format!("{} {} {:?} {:?} -> {:?} from {:?}", n.name, n.op_type, n.attrs, n.inputs, n.outputs, n.fused_from)
        })
        .collect()
}

/// `optimize` or `optimize_reference`.
type Driver = fn(&mut Graph, &HashMap<String, Fact>, &[Pass], &Options) -> Result<Report, sinter_optimizer::OptError>;

fn run(g: &Graph, inputs: &HashMap<String, Fact>, passes: &[Pass], driver: Driver) -> (Graph, Report) {
    let mut out = g.clone();
    let report = driver(&mut out, inputs, passes, &Options::default()).expect("optimizes");
    (out, report)
}

#[test]
fn the_driver_matches_the_reference_on_the_bundled_model() {
    let (g, inputs) = bundled();
    let (out, report) = run(&g, &inputs, &default_passes(), optimize);
    let (expected, expected_report) = run(&g, &inputs, &default_passes(), optimize_reference);
    assert!(report.steps > 50, "{report}");
    assert_eq!(nodes(&out), nodes(&expected));
    assert_eq!(out.initializers, expected.initializers);
    assert_eq!(report, expected_report);
}

#[test]
fn folding_as_its_own_pass_changes_nothing_on_the_bundled_model() {
    let (g, inputs) = bundled();
    let mut old = default_passes();
    let fold = old.remove(0);
    old[0].rules.splice(0..0, fold.rules);
    let (out, _) = run(&g, &inputs, &default_passes(), optimize);
    let (before, _) = run(&g, &inputs, &old, optimize_reference);
    assert_eq!(nodes(&out), nodes(&before));
}
