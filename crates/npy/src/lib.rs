//! `.npy` files to and from [`Tensor`]s. Files come from users: every problem is an
//! error naming the file and what is wrong, never a panic.

#![forbid(unsafe_code)]

use npyz::{DType as NpyDType, NpyFile, WriterBuilder};
use sinter_ir::{tensor::checked_numel, DType, Tensor};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid .npy file: {msg}")]
    Format { path: PathBuf, msg: String },
    #[error("{path}: dtype '{descr}' is not supported (use float32, float16, int8, uint8, int32, int64 or bool)")]
    DType { path: PathBuf, descr: String },
}

fn dtype_of(descr: &str) -> Option<DType> {
    DType::ALL.into_iter().find(|d| d.numpy_descr() == descr || (descr == "<b1" && *d == DType::Bool))
}

/// Reads a C-order `.npy` file.
pub fn read(path: &Path) -> Result<Tensor, NpyError> {
    let file = std::fs::File::open(path).map_err(|source| NpyError::Io { path: path.into(), source })?;
    read_from(std::io::BufReader::new(file), path)
}

/// Reads `.npy` bytes from any reader; `path` only names the source in errors.
pub fn read_from(r: impl Read, path: &Path) -> Result<Tensor, NpyError> {
    let fmt = |msg: String| NpyError::Format { path: path.into(), msg };
    let npy = NpyFile::new(r).map_err(|e| fmt(e.to_string()))?;
    if npy.order() == npyz::Order::Fortran {
        return Err(fmt("Fortran-order arrays are not supported; save with np.ascontiguousarray".into()));
    }
    let descr = match npy.dtype() {
        NpyDType::Plain(ts) => ts.to_string(),
        other => return Err(NpyError::DType { path: path.into(), descr: format!("{other:?}") }),
    };
    let dtype = dtype_of(&descr).ok_or_else(|| NpyError::DType { path: path.into(), descr: descr.clone() })?;
    let shape: Vec<usize> = npy
        .shape()
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| fmt(format!("dimension {d} is too large"))))
        .collect::<Result<_, _>>()?;
    checked_numel(&shape).map_err(|e| fmt(e.to_string()))?;
    let data = |e: std::io::Error| fmt(format!("data does not match the header's shape {shape:?}: {e}"));
    let t = match dtype {
        DType::F32 => Tensor::from_vec(&shape, npy.into_vec::<f32>().map_err(data)?),
        DType::F16 => Tensor::from_vec(&shape, npy.into_vec::<half::f16>().map_err(data)?),
        DType::I8 => Tensor::from_vec(&shape, npy.into_vec::<i8>().map_err(data)?),
        DType::U8 => Tensor::from_vec(&shape, npy.into_vec::<u8>().map_err(data)?),
        DType::I32 => Tensor::from_vec(&shape, npy.into_vec::<i32>().map_err(data)?),
        DType::I64 => Tensor::from_vec(&shape, npy.into_vec::<i64>().map_err(data)?),
        DType::Bool => Tensor::from_bools(&shape, &npy.into_vec::<bool>().map_err(data)?),
    };
    t.map_err(|e| fmt(e.to_string()))
}

/// Writes a tensor as a C-order `.npy` file.
pub fn write(path: &Path, t: &Tensor) -> Result<(), NpyError> {
    let io = |source: std::io::Error| NpyError::Io { path: path.into(), source };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut w = BufWriter::new(file);
    write_to(&mut w, t).map_err(io)?;
    w.flush().map_err(io)
}

/// Writes `.npy` bytes to any writer.
pub fn write_to(w: &mut impl Write, t: &Tensor) -> std::io::Result<()> {
    let shape: Vec<u64> = t.shape().iter().map(|&d| d as u64).collect();
    macro_rules! put {
        ($ty:ty, $vals:expr) => {{
            let mut out = npyz::WriteOptions::<$ty>::new().default_dtype().shape(&shape).writer(&mut *w).begin_nd()?;
            out.extend($vals)?;
            out.finish()
        }};
    }
    let bad = |e: sinter_ir::IrError| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string());
    match t.dtype() {
        DType::F32 => put!(f32, t.as_slice::<f32>().map_err(bad)?.iter().copied()),
        DType::F16 => put!(half::f16, t.as_slice::<half::f16>().map_err(bad)?.iter().copied()),
        DType::I8 => put!(i8, t.as_slice::<i8>().map_err(bad)?.iter().copied()),
        DType::U8 => put!(u8, t.as_slice::<u8>().map_err(bad)?.iter().copied()),
        DType::I32 => put!(i32, t.as_slice::<i32>().map_err(bad)?.iter().copied()),
        DType::I64 => put!(i64, t.as_slice::<i64>().map_err(bad)?.iter().copied()),
        DType::Bool => put!(bool, t.as_slice::<u8>().map_err(bad)?.iter().map(|&b| b != 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_every_dtype() {
        for dtype in DType::ALL {
            let mut t = Tensor::zeros(dtype, &[2, 3]);
            for (i, b) in t.bytes_mut().iter_mut().enumerate() {
                *b = if dtype == DType::Bool { (i % 2) as u8 } else { i as u8 };
            }
            let mut buf = Vec::new();
            write_to(&mut buf, &t).unwrap();
            let back = read_from(&buf[..], Path::new("mem.npy")).unwrap();
            assert_eq!(back, t, "{dtype}");
        }
    }

    #[test]
    fn bad_files_are_errors() {
        let t = Tensor::from_vec(&[4], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
        let mut buf = Vec::new();
        write_to(&mut buf, &t).unwrap();
        for cut in 0..buf.len() {
            assert!(read_from(&buf[..cut], Path::new("cut.npy")).is_err(), "truncated at {cut}");
        }
        let f64_file = b"\x93NUMPY\x01\x00\x76\x00{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }                                                                           \n\0\0\0\0\0\0\0\0";
        let err = read_from(&f64_file[..], Path::new("f64.npy")).unwrap_err().to_string();
        assert!(err.contains("<f8"), "{err}");
    }
}
