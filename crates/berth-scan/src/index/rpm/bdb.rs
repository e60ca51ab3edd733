//! Berkeley DB hash databases (rpm's legacy `Packages`). Page 0 is the metadata page (hash
//! magic 0x061561 at offset 12, in the writer's byte order, and the page size at 20). Hash
//! pages (type 13, or 2 for unsorted) hold alternating key/value items addressed by an offset
//! array after the 26-byte page header; a value too large for the page is an off-page item
//! (type 3: first overflow page and total length), whose data runs through a chain of overflow
//! pages (type 7; `next_pgno` at 16, bytes used on the page at 22, data from 26). Each value
//! is one header blob (rpm also keeps a small bookkeeping record, which is not a header and is
//! skipped).

use crate::index::{Limits, Package};

const HASH_MAGIC: u32 = 0x0006_1561;
const PAGE_HEADER: usize = 26;
const P_HASH_UNSORTED: u8 = 2;
const P_HASH: u8 = 13;
const P_OVERFLOW: u8 = 7;
const H_KEYDATA: u8 = 1;
const H_OFFPAGE: u8 = 3;

#[derive(Clone, Copy)]
struct Order {
    big: bool,
}

impl Order {
    fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let bytes: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        })
    }

    fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let bytes: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.big {
            u16::from_be_bytes(bytes)
        } else {
            u16::from_le_bytes(bytes)
        })
    }
}

/// The packages of a BDB hash `Packages` file; `None` when it is not one.
pub(crate) fn packages(data: &[u8], limits: &Limits) -> Option<Vec<Package>> {
    let order = [false, true]
        .into_iter()
        .map(|big| Order { big })
        .find(|o| o.u32(data, 12) == Some(HASH_MAGIC))?;
    let page_size = usize::try_from(order.u32(data, 20)?).ok()?;
    if !(512..=65536).contains(&page_size) {
        return None;
    }
    let pages = data.len() / page_size;
    let page = |n: usize| data.get(n.checked_mul(page_size)?..(n + 1).checked_mul(page_size)?);
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    for n in 1..pages {
        let Some(p) = page(n) else { break };
        if !matches!(p[25], P_HASH | P_HASH_UNSORTED) {
            continue;
        }
        let entries = usize::from(order.u16(p, 20)?);
        let offsets: Vec<usize> = (0..entries)
            .map_while(|i| order.u16(p, PAGE_HEADER + 2 * i).map(usize::from))
            .collect();
        // Values are the odd items; item i ends where item i-1 starts (item 0 at page end).
        for i in (1..offsets.len()).step_by(2) {
            let (start, end) = (offsets[i], offsets[i - 1]);
            let Some(item) = p.get(start..end) else {
                continue;
            };
            match item.first() {
                Some(&H_KEYDATA) => blobs.push(item[1..].to_vec()),
                Some(&H_OFFPAGE) => {
                    let first = order.u32(item, 4);
                    let total = order.u32(item, 8);
                    if let (Some(first), Some(total)) = (first, total)
                        && let Some(blob) = overflow(order, &page, pages, first, total, limits)
                    {
                        blobs.push(blob);
                    }
                }
                _ => {}
            }
            if blobs.len() as u64 >= limits.max_entries {
                break;
            }
        }
    }
    Some(super::packages(blobs.iter().map(Vec::as_slice), limits))
}

/// The value stored in the overflow chain starting at page `first`.
fn overflow<'a>(
    order: Order,
    page: &impl Fn(usize) -> Option<&'a [u8]>,
    pages: usize,
    first: u32,
    total: u32,
    limits: &Limits,
) -> Option<Vec<u8>> {
    let total = usize::try_from(total).ok()?;
    if total as u64 > limits.max_file_bytes {
        return None;
    }
    let mut out = Vec::with_capacity(total.min(1 << 24));
    let mut next = usize::try_from(first).ok()?;
    // A chain can visit each page at most once; a longer one loops.
    for _ in 0..pages {
        if next == 0 || out.len() >= total {
            break;
        }
        let p = page(next)?;
        if p[25] != P_OVERFLOW {
            return None;
        }
        let used = usize::from(order.u16(p, 22)?);
        out.extend_from_slice(p.get(PAGE_HEADER..PAGE_HEADER.checked_add(used)?)?);
        next = usize::try_from(order.u32(p, 16)?).ok()?;
    }
    (out.len() >= total).then(|| {
        out.truncate(total);
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_a_db_or_garbage_is_none_without_panic() {
        assert!(packages(b"", &Limits::default()).is_none());
        let mut meta = vec![0u8; 4096 * 3];
        meta[12..16].copy_from_slice(&HASH_MAGIC.to_le_bytes());
        meta[20..24].copy_from_slice(&4096u32.to_le_bytes());
        // a hash page claiming many entries with wild offsets
        meta[4096 + 25] = P_HASH;
        meta[4096 + 20..4096 + 22].copy_from_slice(&0xffffu16.to_le_bytes());
        for (i, b) in meta[4096 + 26..8192].iter_mut().enumerate() {
            *b = (i * 37) as u8;
        }
        assert_eq!(packages(&meta, &Limits::default()), Some(vec![]));
    }
}
