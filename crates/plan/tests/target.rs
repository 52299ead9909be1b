//! The target recorded in the header: names, the host, and which plans run where.

mod common;

use sinter_plan::{Plan, PlanError, Target};

fn sample_plan() -> Plan {
    let (meta, weights) = common::sample();
    Plan::new(meta, weights).unwrap()
}

#[test]
fn names_round_trip_and_unknown_names_are_errors() {
    assert_eq!(Target::CPUS.map(Target::name), ["generic", "x86_64", "aarch64"]);
    for t in Target::CPUS {
        assert_eq!(t.name().parse::<Target>().unwrap(), t);
        assert_eq!(t.to_string(), t.name());
    }
    let err = "arm64".parse::<Target>().unwrap_err();
    assert!(matches!(err, PlanError::UnknownTarget { .. }));
    assert_eq!(
        err.to_string(),
        "unknown target 'arm64' (known targets: generic, x86_64, aarch64, \
         cuda:SM[,SM...] (at most 4 compute capabilities, e.g. cuda:87,90))"
    );
    assert_eq!(Target::from_name("x86_64-avx2"), None);
}

#[test]
fn host_is_the_compiled_architecture() {
    let expected = match std::env::consts::ARCH {
        "x86_64" => Target::X86_64,
        "aarch64" => Target::Aarch64,
        _ => Target::Generic,
    };
    assert_eq!(Target::host(), expected);
}

#[test]
fn generic_plans_run_everywhere_and_others_only_on_their_architecture() {
    use Target::*;
    for host in Target::CPUS {
        assert!(Generic.runs_on(host));
    }
    assert!(X86_64.runs_on(X86_64));
    assert!(Aarch64.runs_on(Aarch64));
    assert!(!X86_64.runs_on(Aarch64));
    assert!(!Aarch64.runs_on(X86_64));
    assert!(!Aarch64.runs_on(Generic));
}

#[test]
fn the_target_survives_a_round_trip_through_the_file() {
    assert_eq!(sample_plan().header().target, "generic");
    for t in Target::CPUS {
        let plan = sample_plan().with_target(&t.name()).unwrap();
        let back = Plan::from_bytes(&plan.to_bytes()).unwrap();
        assert_eq!(back.header().target, t.name());
        assert_eq!(Target::from_name(&back.header().target), Some(t));
    }
}

#[test]
fn cuda_targets_list_their_architectures() {
    let t: Target = "cuda:90,87".parse().expect("parses");
    assert_eq!(t.name(), "cuda:87,90", "sorted, one spelling");
    assert_eq!(t.backend(), sinter_plan::BackendKind::Cuda);
    assert_eq!(Target::from_name("cuda:87,90"), Some(t));
    assert!(!t.runs_on(Target::host()), "no CPU runs a CUDA plan");
    // Unsorted or duplicated spellings, empty lists, absurd capabilities, too many.
    for bad in ["cuda:90,87", "cuda:87,87", "cuda:", "cuda:9", "cuda:1000", "cuda:50,60,70,80,90", "cuda:x"] {
        assert_eq!(Target::from_name(bad), None, "{bad}");
    }
    assert!("cuda:50,60,70,80,90".parse::<Target>().is_err());
    let plan = sample_plan().with_target(&t.name()).unwrap();
    let back = Plan::from_bytes(&plan.to_bytes()).unwrap();
    assert_eq!(Target::from_name(&back.header().target), Some(t));
}
