//! The runtime's contract on the bundled real model: one engine shared by threads,
//! contexts that agree with each other, and clear errors for bad inputs.

use sinter::{DType, Engine, Error, Tensor};
use sinter_builder::{build_onnx, BuildOptions};
use std::path::Path;

fn engine() -> Engine {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/ch_ppocr_mobile_v2.0_cls_infer.onnx");
    let opts = BuildOptions { shapes: [("x".to_string(), vec![1, 3, 48, 192])].into(), ..Default::default() };
    let (plan, _) = build_onnx(&model, &opts).expect("build the bundled model");
    Engine::new(plan).expect("prepare")
}

fn input(seed: u32) -> Tensor {
    let n = 3 * 48 * 192;
    let v: Vec<f32> = (0..n)
        .map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    Tensor::from_vec(&[1, 3, 48, 192], v).unwrap()
}

#[test]
fn threads_share_one_engine() {
    let engine = engine();
    let expected: Vec<Tensor> = (0..4).map(|s| engine.run(&[("x", input(s))]).unwrap().remove(0).1).collect();
    assert_ne!(expected[0], expected[1], "different inputs give different outputs");
    std::thread::scope(|scope| {
        for (s, want) in expected.iter().enumerate() {
            let engine = &engine;
            scope.spawn(move || {
                let mut ctx = engine.context();
                for _ in 0..3 {
                    ctx.set_input("x", &input(s as u32)).unwrap();
                    ctx.run().unwrap();
                    assert_eq!(ctx.output(0).unwrap().to_tensor(), *want);
                }
                assert_eq!(engine.run(&[("x", input(s as u32))]).unwrap()[0].1, *want);
            });
        }
    });
}

/// A context keeps its inputs: running it again without setting them gives the same
/// result (the planner never reuses a graph input's bytes for a later tensor).
#[test]
fn inputs_stay_set_across_runs() {
    let engine = engine();
    let want = engine.run(&[("x", input(7))]).unwrap().remove(0).1;
    let mut ctx = engine.context();
    ctx.set_input("x", &input(7)).unwrap();
    for run in 0..3 {
        ctx.run().unwrap();
        assert_eq!(ctx.output(0).unwrap().to_tensor(), want, "run {run}");
    }
}

#[test]
fn input_errors_name_the_problem() {
    let engine = engine();
    let none: [(&str, Tensor); 0] = [];
    assert!(matches!(engine.run(&none), Err(Error::MissingInput { ref name, .. }) if name == "x"));
    assert!(matches!(engine.run(&[("y", input(0))]), Err(Error::UnknownInput { ref name, .. }) if name == "y"));
    assert!(matches!(engine.run(&[("x", input(0)), ("x", input(1))]), Err(Error::DuplicateInput(_))));
    let wrong = Tensor::zeros(DType::F32, &[1, 3, 48, 191]);
    let err = engine.run(&[("x", wrong)]).unwrap_err().to_string();
    assert!(err.contains("[1, 3, 48, 192]") && err.contains("[1, 3, 48, 191]"), "{err}");
    let err = engine.run(&[("x", Tensor::zeros(DType::I64, &[1, 3, 48, 192]))]).unwrap_err().to_string();
    assert!(err.contains("i64"), "{err}");
}

/// Plans with valid checksums but a schedule that lies (the file is untrusted) are refused
/// at load with an error naming the kernel, before any kernel runs.
#[test]
fn inconsistent_schedules_are_refused_at_load() {
    use sinter_plan::{Location, Plan};
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/ch_ppocr_mobile_v2.0_cls_infer.onnx");
    let opts = BuildOptions { shapes: [("x".to_string(), vec![1, 3, 48, 192])].into(), ..Default::default() };
    let (plan, _) = build_onnx(&model, &opts).expect("build the bundled model");
    let rebuild = |edit: &dyn Fn(&mut sinter_plan::PlanMeta)| -> String {
        let mut meta = plan.meta().clone();
        edit(&mut meta);
        match Plan::new(meta, plan.weights().to_vec()) {
            Err(e) => e.to_string(),
            Ok(p) => match Engine::new(p) {
                Err(e) => e.to_string(),
                Ok(_) => panic!("an inconsistent plan was accepted"),
            },
        }
    };
    // An output shape that keeps the byte size but not the op's shape.
    let err = rebuild(&|m| {
        let out = m.kernels[0].outputs[0] as usize;
        m.tensors[out].shape.reverse();
    });
    assert!(err.contains("kernel 0") && err.contains("op computes"), "{err}");
    // An attribute the op rejects.
    let err = rebuild(&|m| {
        m.kernels[0].attrs.insert("group", sinter_ir::AttrValue::Int(0));
    });
    assert!(err.contains("kernel 0") && err.contains("group"), "{err}");
    // An unknown op type.
    let err = rebuild(&|m| m.kernels[1].op_type = "NotAnOp".into());
    assert!(err.contains("NotAnOp"), "{err}");
    // A kernel writing over its own input.
    let err = rebuild(&|m| {
        let k = &m.kernels[1];
        let (i, o) = (k.inputs[0].unwrap() as usize, k.outputs[0] as usize);
        if let (Location::Arena { offset, .. }, Location::Arena { bytes, .. }) =
            (m.tensors[i].location, m.tensors[o].location)
        {
            m.tensors[o].location = Location::Arena { offset, bytes };
        }
    });
    assert!(err.contains("kernel 1") && err.contains("over tensor"), "{err}");
}
