use crate::{DType, Elem, IrError, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// 64-byte aligned storage, so every element type (and SIMD loads) can view it.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block([u8; 64]);

#[derive(Clone, Default)]
struct AlignedBuf {
    blocks: Vec<Block>,
    len: usize,
}

impl AlignedBuf {
    fn zeroed(len: usize) -> Self {
        AlignedBuf { blocks: vec![Block([0; 64]); len.div_ceil(64)], len }
    }
    fn bytes(&self) -> &[u8] {
        // SAFETY: blocks hold at least `len` initialized bytes; Block is plain bytes.
        unsafe { std::slice::from_raw_parts(self.blocks.as_ptr() as *const u8, self.len) }
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and we hold the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.blocks.as_mut_ptr() as *mut u8, self.len) }
    }
}

/// Number of elements of a shape (1 for a scalar).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Number of elements, failing on overflow (shapes come from untrusted files).
pub fn checked_numel(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| IrError::Shape(format!("shape {shape:?} is too large")))
}

/// An owned, dense, row-major tensor.
#[derive(Clone)]
pub struct Tensor {
    dtype: DType,
    shape: Vec<usize>,
    data: AlignedBuf,
}

impl Tensor {
    pub fn zeros(dtype: DType, shape: &[usize]) -> Tensor {
        let n = numel(shape);
        Tensor { dtype, shape: shape.to_vec(), data: AlignedBuf::zeroed(n * dtype.size()) }
    }

    pub fn from_vec<T: Elem>(shape: &[usize], data: Vec<T>) -> Result<Tensor> {
        Tensor::from_slice(shape, &data)
    }

    pub fn from_slice<T: Elem>(shape: &[usize], data: &[T]) -> Result<Tensor> {
        Tensor::from_bytes(T::DTYPE, shape, bytemuck::cast_slice(data))
    }

    /// A bool tensor from Rust bools.
    pub fn from_bools(shape: &[usize], data: &[bool]) -> Result<Tensor> {
        let bytes: Vec<u8> = data.iter().map(|&b| b as u8).collect();
        Tensor::from_bytes(DType::Bool, shape, &bytes)
    }

    /// Copies little-endian element bytes into a new tensor, checking the length.
    pub fn from_bytes(dtype: DType, shape: &[usize], bytes: &[u8]) -> Result<Tensor> {
        let n = checked_numel(shape)?;
        let expected =
            n.checked_mul(dtype.size()).ok_or_else(|| IrError::Shape(format!("shape {shape:?} is too large")))?;
        if bytes.len() != expected {
            return Err(IrError::Data(format!(
                "{dtype} tensor of shape {shape:?} needs {expected} bytes, got {}",
                bytes.len()
            )));
        }
        let mut t = Tensor::zeros(dtype, shape);
        t.data.bytes_mut().copy_from_slice(bytes);
        if dtype == DType::Bool {
            for b in t.data.bytes_mut() {
                *b = (*b != 0) as u8;
            }
        }
        Ok(t)
    }

    pub fn scalar<T: Elem>(v: T) -> Tensor {
        Tensor::from_slice(&[], &[v]).expect("one element for a scalar")
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn len(&self) -> usize {
        numel(&self.shape)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn bytes(&self) -> &[u8] {
        self.data.bytes()
    }
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.data.bytes_mut()
    }

    /// Reinterprets the shape; the element count must not change.
    pub fn reshaped(mut self, shape: &[usize]) -> Result<Tensor> {
        if checked_numel(shape)? != self.len() {
            return Err(IrError::Shape(format!("cannot reshape {:?} to {:?}", self.shape, shape)));
        }
        self.shape = shape.to_vec();
        Ok(self)
    }

    pub fn as_slice<T: Elem>(&self) -> Result<&[T]> {
        self.view().as_slice()
    }
    pub fn as_slice_mut<T: Elem>(&mut self) -> Result<&mut [T]> {
        check_elem::<T>(self.dtype)?;
        Ok(bytemuck::cast_slice_mut(self.data.bytes_mut()))
    }

    pub fn view(&self) -> View<'_> {
        View { dtype: self.dtype, shape: &self.shape, data: self.data.bytes() }
    }
    pub fn view_mut(&mut self) -> ViewMut<'_> {
        ViewMut { dtype: self.dtype, shape: &self.shape, data: self.data.bytes_mut() }
    }

    /// Values widened to f64 (for comparisons and integer shape math).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        self.view().to_f64_vec()
    }

    /// Values as i64, for shape-like inputs (axes, pads, sizes). Floats are truncated.
    pub fn to_i64_vec(&self) -> Result<Vec<i64>> {
        self.view().to_i64_vec()
    }
}

impl PartialEq for Tensor {
    fn eq(&self, other: &Tensor) -> bool {
        self.dtype == other.dtype && self.shape == other.shape && self.bytes() == other.bytes()
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let vals = self.to_f64_vec();
        let head: Vec<f64> = vals.iter().take(8).copied().collect();
        write!(f, "Tensor<{}>{:?} {:?}{}", self.dtype, self.shape, head, if vals.len() > 8 { " …" } else { "" })
    }
}

#[derive(Serialize, Deserialize)]
struct TensorRepr {
    dtype: DType,
    shape: Vec<usize>,
    #[serde(with = "serde_bytes_compat")]
    data: Vec<u8>,
}

/// Bytes as one serde byte string (postcard: a length and the raw bytes).
mod serde_bytes_compat {
    use serde::{de, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = a.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

impl Serialize for Tensor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TensorRepr { dtype: self.dtype, shape: self.shape.clone(), data: self.bytes().to_vec() }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Tensor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = TensorRepr::deserialize(d)?;
        Tensor::from_bytes(r.dtype, &r.shape, &r.data).map_err(serde::de::Error::custom)
    }
}

fn check_elem<T: Elem>(dtype: DType) -> Result<()> {
    let storage = if dtype == DType::Bool { DType::U8 } else { dtype };
    if storage != T::DTYPE {
        return Err(IrError::DType { expected: T::DTYPE.to_string(), found: dtype });
    }
    Ok(())
}

/// A borrowed tensor: the shape and the raw little-endian bytes.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    pub dtype: DType,
    pub shape: &'a [usize],
    pub data: &'a [u8],
}

impl<'a> View<'a> {
    /// Typed elements. Fails on a dtype mismatch or misaligned bytes.
    pub fn as_slice<T: Elem>(&self) -> Result<&'a [T]> {
        check_elem::<T>(self.dtype)?;
        bytemuck::try_cast_slice(self.data)
            .map_err(|e| IrError::Data(format!("cannot view bytes as {}: {e}", T::DTYPE)))
    }
    pub fn len(&self) -> usize {
        numel(self.shape)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn to_tensor(&self) -> Tensor {
        let mut t = Tensor::zeros(self.dtype, self.shape);
        t.bytes_mut().copy_from_slice(self.data);
        t
    }
    pub fn to_f64_vec(&self) -> Vec<f64> {
        crate::dispatch_dtype!(self.dtype, T => match self.as_slice::<T>() {
            Ok(s) => s.iter().map(|v| v.to_f64()).collect(),
            Err(_) => Vec::new(),
        })
    }
    pub fn to_i64_vec(&self) -> Result<Vec<i64>> {
        Ok(match self.dtype {
            DType::I64 => self.as_slice::<i64>()?.to_vec(),
            DType::I32 => self.as_slice::<i32>()?.iter().map(|&v| v as i64).collect(),
            _ => self.to_f64_vec().into_iter().map(|v| v as i64).collect(),
        })
    }
}

/// A mutably borrowed output tensor, preallocated with its inferred shape.
#[derive(Debug)]
pub struct ViewMut<'a> {
    pub dtype: DType,
    pub shape: &'a [usize],
    pub data: &'a mut [u8],
}

impl<'a> ViewMut<'a> {
    pub fn as_slice_mut<T: Elem>(&mut self) -> Result<&mut [T]> {
        check_elem::<T>(self.dtype)?;
        bytemuck::try_cast_slice_mut(self.data)
            .map_err(|e| IrError::Data(format!("cannot view bytes as {}: {e}", T::DTYPE)))
    }
    pub fn len(&self) -> usize {
        numel(self.shape)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn reborrow(&mut self) -> ViewMut<'_> {
        ViewMut { dtype: self.dtype, shape: self.shape, data: self.data }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_dtype_checks() {
        let t = Tensor::from_vec(&[2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(t.as_slice::<f32>().unwrap(), &[1.0, 2.0, 3.0, 4.0]);
        assert!(t.as_slice::<i32>().is_err());
        assert!(Tensor::from_bytes(DType::F32, &[3], &[0; 8]).is_err());
        assert!(checked_numel(&[usize::MAX, 2]).is_err());
        let b = Tensor::from_bytes(DType::Bool, &[2], &[0, 7]).unwrap();
        assert_eq!(b.bytes(), &[0, 1]);
        assert_eq!(t.bytes().as_ptr() as usize % 64, 0);
    }
}
