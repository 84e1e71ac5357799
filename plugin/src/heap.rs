//! The guest's allocator: talc, fed first with the free part of the memory the instance starts
//! with (from `__heap_base` to the end of its initial pages), and only then with `memory.grow`.
//!
//! Why: Rust's default wasm allocator (dlmalloc) takes every byte of its heap from
//! `memory.grow`, so each fresh instance grew its memory on its first allocation, and the host
//! paid an `mprotect` for the growth and another to undo it when it recycled the instance's
//! slot, with a TLB shoot-down on the other cores each time. The build script gives the module
//! enough initial pages for a webhook's allocations (docs/decisions/0013-fixed-cost-per-call.md), so
//! a typical call never grows its memory; a call that needs more still grows it, up to the
//! host's limit.

use core::alloc::Layout;
use core::arch::wasm32::{memory_grow, memory_size};
use core::ptr::NonNull;

use talc::base::binning::Binning;
use talc::base::{CHUNK_UNIT, Talc};
use talc::cell::TalcSyncCell;
use talc::source::Source;
use talc::wasm::WasmBinning;

const PAGE: usize = 64 * 1024;

unsafe extern "C" {
    /// Where the linker placed the first byte after the module's data and stack.
    static __heap_base: u8;
}

/// The initial memory past `__heap_base`, then pages grown on demand, kept as one heap.
#[derive(Debug)]
pub struct InitialThenGrown {
    /// The end of the heap claimed so far (`None` until the first allocation).
    end: Option<NonNull<u8>>,
}

// SAFETY: `acquire` hands talc only memory nothing else uses: the linker leaves everything from
// `__heap_base` to the end of memory to the program, and grown pages are new. It allocates
// nothing itself.
unsafe impl Source for InitialThenGrown {
    fn acquire<B: Binning>(talc: &mut Talc<Self, B>, layout: Layout) -> Result<(), ()> {
        if talc.source.end.is_none() {
            // The first allocation of the instance: the initial memory's free part.
            let base = (&raw const __heap_base).cast_mut();
            let size = (memory_size::<0>() * PAGE).saturating_sub(base as usize);
            // SAFETY: see the impl; the span lies within the current memory.
            talc.source.end = unsafe { talc.claim(base, size) };
            if talc.source.end.is_some() {
                return Ok(());
            }
        }
        Self::grow(talc, layout)
    }
}

impl InitialThenGrown {
    /// Grows memory by enough pages for `layout` and adds them to the heap, extending it when
    /// they follow it (they do: nothing else grows the memory).
    fn grow<B: Binning>(talc: &mut Talc<Self, B>, layout: Layout) -> Result<(), ()> {
        // Room for the allocation, its alignment and talc's chunk overhead.
        let needed = layout.size() + layout.align() + 2 * CHUNK_UNIT;
        let pages = needed.div_ceil(PAGE);
        let previous = memory_grow::<0>(pages);
        if previous == usize::MAX {
            return Err(());
        }
        let base = (previous * PAGE) as *mut u8;
        let size = pages * PAGE;
        let new_end = base.wrapping_add(size);
        talc.source.end = match talc.source.end {
            // SAFETY: the grown pages start where the heap ends.
            Some(end) if end.as_ptr() == base => Some(unsafe { talc.extend(end, new_end) }),
            // SAFETY: see the impl.
            _ => unsafe { talc.claim(base, size) },
        };
        if talc.source.end.is_some() {
            Ok(())
        } else {
            Err(())
        }
    }
}

#[global_allocator]
static ALLOCATOR: TalcSyncCell<InitialThenGrown, WasmBinning> =
    TalcSyncCell::new_wasm(InitialThenGrown { end: None });
