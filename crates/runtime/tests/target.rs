//! The runtime refuses a plan recorded for another target with a typed error naming
//! both, accepts generic plans and its own architecture's, and runs them.

use sinter_builder::{build, BuildOptions};
use sinter_ir::{Attrs, DType, Dim, Graph, Node, Tensor, ValueInfo};
use sinter_plan::{Plan, Target};
use sinter_runtime::{Engine, RuntimeError};

/// A one-Relu plan built for `target`.
fn relu_plan(target: Option<Target>) -> Plan {
    let node = Node::new("relu", "Relu", 17, Attrs::new(), vec!["x".into()], vec!["y".into()]).expect("node");
    let graph = Graph {
        name: "relu".into(),
        inputs: vec![ValueInfo { name: "x".into(), dtype: DType::F32, dims: Some(vec![Dim::Fixed(4)]) }],
        outputs: vec![ValueInfo { name: "y".into(), dtype: DType::F32, dims: None }],
        initializers: Default::default(),
        nodes: vec![node],
        source_nodes: 1,
    };
    build(&graph, &BuildOptions { target, ..Default::default() }).expect("plan builds").0
}

fn runs(plan: Plan) {
    let engine = Engine::new(plan).expect("engine loads");
    let x = Tensor::from_vec(&[4], vec![-1.0f32, 2.0, -3.0, 4.0]).unwrap();
    let out = engine.run(&[("x", &x)]).expect("runs");
    assert_eq!(out[0].1.as_slice::<f32>().unwrap(), &[0.0, 2.0, 0.0, 4.0]);
}

fn refused(plan: Plan, name: &str) {
    let host = Target::host().name();
    match Engine::new(plan) {
        Err(e @ RuntimeError::WrongTarget { .. }) => {
            let msg = e.to_string();
            let expected = format!("plan was built for target '{name}' but this machine is {host}");
            assert!(msg.starts_with(&expected), "{msg}");
            assert!(msg.contains(&format!("--target {host}")), "{msg}");
        }
        Err(e) => panic!("wrong error for target '{name}': {e}"),
        Ok(_) => panic!("a plan for '{name}' was accepted on {host}"),
    }
}

#[test]
fn plans_for_this_machine_and_generic_plans_run() {
    let plan = relu_plan(None);
    assert_eq!(plan.header().target, Target::host().name());
    runs(plan);
    runs(relu_plan(Some(Target::Generic)));
    runs(relu_plan(Some(Target::host())));
}

#[test]
fn plans_for_another_architecture_are_refused() {
    for t in [Target::X86_64, Target::Aarch64].into_iter().filter(|&t| t != Target::host()) {
        refused(relu_plan(Some(t)), &t.name());
    }
}

#[test]
fn unknown_targets_are_refused() {
    // A name a newer producer might write, and one with a variant suffix this version
    // does not know: the runtime cannot tell what they need, so it refuses them.
    for name in ["riscv64", "x86_64-avx512"] {
        let plan = relu_plan(None).with_target(name).unwrap();
        let plan = Plan::from_bytes(&plan.to_bytes()).unwrap();
        refused(plan, name);
    }
}

#[test]
fn cuda_plans_need_the_cuda_backend() {
    let plan = relu_plan(Some(Target::Generic)).with_target("cuda:87,90").unwrap();
    let plan = Plan::from_bytes(&plan.to_bytes()).unwrap();
    match Engine::new(plan) {
        Err(e @ RuntimeError::NoBackend { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("'cuda:87,90'") && msg.contains("cuda backend"), "{msg}");
        }
        Err(e) => panic!("wrong error for a CUDA plan: {e}"),
        Ok(_) => panic!("a CUDA plan was accepted by a runtime without the CUDA backend"),
    }
}
