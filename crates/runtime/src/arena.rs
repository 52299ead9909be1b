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

/// One cache line of floats.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

/// 64-byte aligned kernel workspace of one execution context (see `Exec::workspace`):
/// allocated once, beside the arena, so no kernel allocates while running.
pub(crate) struct Workspace {
    lines: Vec<Line>,
}

impl Workspace {
    pub(crate) fn new(floats: usize) -> Workspace {
        Workspace { lines: vec![Line([0.0; 16]); floats.div_ceil(16)] }
    }

    pub(crate) fn floats(&mut self) -> &mut [f32] {
        let len = self.lines.len() * 16;
        // SAFETY: `Line` is `repr(C)` around `[f32; 16]`, 64 bytes with no padding, so
        // the lines are `len` consecutive initialized floats, borrowed mutably here.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<f32>(), len) }
    }
}
