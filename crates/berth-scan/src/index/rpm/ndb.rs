//! NDB (`Packages.db`, rpm ≥ 4.16's native backend), little-endian. A 32-byte header (`RpmP`,
//! version, generation, number of slot pages at 12) is followed, in the slot pages (4096 bytes
//! each), by 16-byte slots: `Slot`, package index (0 = free), block offset, block count, where
//! a block is 16 bytes. A blob at its block offset starts with `BlbS`, package index,
//! generation and length, then the header blob.

use crate::index::{Limits, Package};

const SLOT_PAGE: usize = 4096;
const BLOCK: usize = 16;

fn le32(b: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

fn size(v: u32) -> Option<usize> {
    usize::try_from(v).ok()
}

/// The packages of an NDB `Packages.db`; `None` when it is not one.
pub(crate) fn packages(data: &[u8], limits: &Limits) -> Option<Vec<Package>> {
    if data.get(..4)? != b"RpmP" {
        return None;
    }
    let slot_pages = size(le32(data, 12)?)?;
    let slots_end = slot_pages.checked_mul(SLOT_PAGE)?.min(data.len());
    let mut blobs = Vec::new();
    for slot in data.get(32..slots_end)?.chunks_exact(16) {
        if &slot[..4] != b"Slot" {
            continue;
        }
        let (Some(idx), Some(offset)) = (le32(slot, 4), le32(slot, 8)) else {
            continue;
        };
        if idx == 0 {
            continue;
        }
        let Some(at) = size(offset).and_then(|o| o.checked_mul(BLOCK)) else {
            continue;
        };
        if let Some(blob) = blob(data, at, idx) {
            blobs.push(blob);
        }
        if blobs.len() as u64 >= limits.max_entries {
            break;
        }
    }
    Some(super::packages(blobs.into_iter(), limits))
}

fn blob(data: &[u8], at: usize, idx: u32) -> Option<&[u8]> {
    let head = data.get(at..at.checked_add(16)?)?;
    if &head[..4] != b"BlbS" || le32(head, 4)? != idx {
        return None;
    }
    let len = size(le32(head, 12)?)?;
    data.get(at + 16..(at + 16).checked_add(len)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_none_or_empty() {
        assert!(packages(b"RpmP", &Limits::default()).is_none());
        let mut d = vec![0u8; 8192];
        d[..4].copy_from_slice(b"RpmP");
        d[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        d[32..36].copy_from_slice(b"Slot");
        d[36..40].copy_from_slice(&1u32.to_le_bytes());
        d[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(packages(&d, &Limits::default()), Some(vec![]));
    }
}
