/// 64-byte aligned, zeroed activation memory of one execution context.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block([u8; 64]);

pub(crate) struct Arena {
    blocks: Vec<Block>,
}

impl Arena {
    pub(crate) fn new(bytes: usize) -> Arena {
        Arena { blocks: vec![Block([0; 64]); bytes.div_ceil(64)] }
    }

    pub(crate) fn base(&mut self) -> *mut u8 {
        self.blocks.as_mut_ptr() as *mut u8
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: the blocks are initialized plain bytes.
        unsafe { std::slice::from_raw_parts(self.blocks.as_ptr() as *const u8, self.blocks.len() * 64) }
    }
}
