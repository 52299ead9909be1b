//! The Lite API: load a plan, run it on an input, print the outputs.
//!
//! ```text
//! cargo run --release -p sinter-cli -- build models/ch_ppocr_mobile_v2.0_cls_infer.onnx \
//!     -o cls.plan --shapes x:1x3x48x192
//! cargo run --release --example lite -- cls.plan
//! ```

use sinter::{DType, Engine, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "model.plan".into());
    let engine = Engine::load(&path)?;
    // Feed every input a constant tensor of its declared type and shape.
    let inputs: Vec<(String, Tensor)> = engine
        .inputs()
        .into_iter()
        .map(|i| {
            let mut t = Tensor::zeros(i.dtype, &i.shape);
            if i.dtype == DType::F32 {
                t.as_slice_mut::<f32>()?.fill(0.5);
            }
            Ok((i.name, t))
        })
        .collect::<Result<_, Box<dyn std::error::Error>>>()?;
    let outputs = engine.run(&inputs)?;
    for (name, tensor) in &outputs {
        let values = tensor.to_f64_vec();
        println!("{name}: {}{:?} {:?}", tensor.dtype(), tensor.shape(), &values[..values.len().min(8)]);
    }
    Ok(())
}
