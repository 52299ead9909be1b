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
