use crate::{IrError, Result, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One attribute value, as in ONNX `AttributeProto`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AttrValue {
    Int(i64),
    Float(f32),
    String(String),
    Tensor(Tensor),
    Ints(Vec<i64>),
    Floats(Vec<f32>),
    Strings(Vec<String>),
}

/// The attributes of a node. Ops parse these into typed parameters when they are built,
/// so a bad attribute is reported before anything runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Attrs(pub BTreeMap<String, AttrValue>);

fn wrong(name: &str, want: &str, got: &AttrValue) -> IrError {
    IrError::Attr { name: name.to_string(), msg: format!("expected {want}, found {got:?}") }
}

impl Attrs {
    pub fn new() -> Attrs {
        Attrs::default()
    }
    pub fn with(mut self, name: &str, v: AttrValue) -> Attrs {
        self.0.insert(name.to_string(), v);
        self
    }
    pub fn insert(&mut self, name: &str, v: AttrValue) {
        self.0.insert(name.to_string(), v);
    }
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
    pub fn get(&self, name: &str) -> Option<&AttrValue> {
        self.0.get(name)
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(AttrValue::Int(v)) => Ok(Some(*v)),
            Some(v) => Err(wrong(name, "an int", v)),
        }
    }
    pub fn int_or(&self, name: &str, default: i64) -> Result<i64> {
        Ok(self.int(name)?.unwrap_or(default))
    }
    pub fn float(&self, name: &str) -> Result<Option<f32>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(AttrValue::Float(v)) => Ok(Some(*v)),
            Some(AttrValue::Int(v)) => Ok(Some(*v as f32)),
            Some(v) => Err(wrong(name, "a float", v)),
        }
    }
    pub fn float_or(&self, name: &str, default: f32) -> Result<f32> {
        Ok(self.float(name)?.unwrap_or(default))
    }
    pub fn string(&self, name: &str) -> Result<Option<&str>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(AttrValue::String(v)) => Ok(Some(v)),
            Some(v) => Err(wrong(name, "a string", v)),
        }
    }
    pub fn string_or<'a>(&'a self, name: &str, default: &'a str) -> Result<&'a str> {
        Ok(self.string(name)?.unwrap_or(default))
    }
    pub fn ints(&self, name: &str) -> Result<Option<&[i64]>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(AttrValue::Ints(v)) => Ok(Some(v)),
            Some(v) => Err(wrong(name, "a list of ints", v)),
        }
    }
    pub fn floats(&self, name: &str) -> Result<Option<&[f32]>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(AttrValue::Floats(v)) => Ok(Some(v)),
            Some(v) => Err(wrong(name, "a list of floats", v)),
        }
    }
    pub fn strings(&self, name: &str) -> Result<Option<&[String]>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(AttrValue::Strings(v)) => Ok(Some(v)),
            Some(v) => Err(wrong(name, "a list of strings", v)),
        }
    }
    pub fn tensor(&self, name: &str) -> Result<Option<&Tensor>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(AttrValue::Tensor(v)) => Ok(Some(v)),
            Some(v) => Err(wrong(name, "a tensor", v)),
        }
    }
    /// Fails on an attribute with a value Sinter does not implement, naming it.
    pub fn unsupported(name: &str, msg: impl Into<String>) -> IrError {
        IrError::Attr { name: name.to_string(), msg: msg.into() }
    }
}
