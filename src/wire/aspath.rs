//! AS_PATH and AS4_PATH segments (RFC 4271 §4.3, RFC 5065, RFC 6793): the one walker over
//! segments of 2- or 4-octet AS numbers, its RFC 7606 §7.2 validation, encoding, and the
//! RFC 6793 §4.2.3 merge of an AS4_PATH into a 2-octet speaker's AS_PATH.
//!
//! Used by `wire::attr` (checks of received AS_PATH and AS4_PATH), `wire::update` (the paths
//! we announce) and `mrt::record` (TABLE_DUMP_V2 attributes, always 4-octet). Pure code; bytes
//! from the network never make it panic.

use super::open::AS_TRANS;

/// Segment types (RFC 4271 §4.3, RFC 5065 §3 for the confederation types).
pub const AS_SET: u8 = 1;
pub const AS_SEQUENCE: u8 = 2;
pub const AS_CONFED_SEQUENCE: u8 = 3;
pub const AS_CONFED_SET: u8 = 4;

/// Octets per AS number: 2, or 4 once RFC 6793 is negotiated (and always in AS4_PATH).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsWidth {
    Two,
    Four,
}

impl AsWidth {
    pub fn of_session(four_octet_as: bool) -> AsWidth {
        if four_octet_as {
            AsWidth::Four
        } else {
            AsWidth::Two
        }
    }

    pub fn octets(self) -> usize {
        match self {
            AsWidth::Two => 2,
            AsWidth::Four => 4,
        }
    }
}

/// One segment as it is on the wire: type, count and the AS numbers' bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawSegment<'a> {
    pub kind: u8,
    pub count: u8,
    width: AsWidth,
    bytes: &'a [u8],
}

impl RawSegment<'_> {
    /// The AS numbers of the segment, widened to u32.
    pub fn asns(&self) -> impl Iterator<Item = u32> + '_ {
        self.bytes.chunks_exact(self.width.octets()).map(|c| match c {
            [a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
            [a, b] => u32::from(u16::from_be_bytes([*a, *b])),
            _ => 0, // chunks_exact gives only 2 or 4 bytes
        })
    }
}

/// Why the walk over an attribute's segments stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// One byte left where a segment header needs two.
    HeaderCutShort,
    /// The segment's AS numbers run past the attribute.
    Overrun { kind: u8, count: u8 },
}

/// The segment walker: yields each segment, or one error and then nothing.
pub struct Walk<'a> {
    rest: &'a [u8],
    width: AsWidth,
}

/// Walk the segments of an AS_PATH or AS4_PATH value.
pub fn walk(value: &[u8], width: AsWidth) -> Walk<'_> {
    Walk { rest: value, width }
}

impl<'a> Iterator for Walk<'a> {
    type Item = Result<RawSegment<'a>, WalkError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = std::mem::take(&mut self.rest);
        match rest {
            [] => None,
            [_] => Some(Err(WalkError::HeaderCutShort)),
            [kind, count, tail @ ..] => {
                let n = usize::from(*count) * self.width.octets();
                let Some(bytes) = tail.get(..n) else {
                    return Some(Err(WalkError::Overrun { kind: *kind, count: *count }));
                };
                self.rest = &tail[n..];
                Some(Ok(RawSegment { kind: *kind, count: *count, width: self.width, bytes }))
            }
        }
    }
}

fn known_kind(kind: u8) -> bool {
    (AS_SET..=AS_CONFED_SET).contains(&kind)
}

/// Whether an AS_PATH (or AS4_PATH) value is well formed: segments of a known type, non-zero
/// length, exactly filling the attribute (RFC 4271 §4.3, RFC 7606 §7.2, RFC 5065 confed types).
pub fn check(value: &[u8], width: AsWidth) -> Result<(), String> {
    let bad_kind = |ty: u8| format!("segment type {ty} is not AS_SET, AS_SEQUENCE or a confederation type");
    for seg in walk(value, width) {
        match seg {
            Err(WalkError::HeaderCutShort) => return Err("a segment header is cut short".into()),
            Err(WalkError::Overrun { kind, .. }) if !known_kind(kind) => return Err(bad_kind(kind)),
            Err(WalkError::Overrun { count, .. }) => {
                return Err(format!("a segment of {count} AS numbers overruns the attribute"))
            }
            Ok(s) if !known_kind(s.kind) => return Err(bad_kind(s.kind)),
            Ok(s) if s.count == 0 => return Err("a segment has no AS numbers".into()),
            Ok(_) => {}
        }
    }
    Ok(())
}

/// A decoded segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub kind: u8,
    pub asns: Vec<u32>,
}

/// All segments of a value, whatever their type; `None` when the walk does not end exactly at
/// the end of the value. Callers that rewrite keep such a value as it is.
pub fn decode(value: &[u8], width: AsWidth) -> Option<Vec<Segment>> {
    walk(value, width).map(|s| s.ok().map(|s| Segment { kind: s.kind, asns: s.asns().collect() })).collect()
}

/// Append one segment type holding `asns`, split into segments of at most 255. On a 2-octet
/// encoding an AS number above 65535 becomes AS_TRANS (RFC 6793 §4.2.2).
pub fn encode_segment(out: &mut Vec<u8>, kind: u8, asns: &[u32], width: AsWidth) {
    for chunk in asns.chunks(255) {
        out.push(kind);
        out.push(chunk.len() as u8);
        for asn in chunk {
            match width {
                AsWidth::Four => out.extend_from_slice(&asn.to_be_bytes()),
                AsWidth::Two => out.extend_from_slice(&u16::try_from(*asn).unwrap_or(AS_TRANS).to_be_bytes()),
            }
        }
    }
}

/// The value of an AS_PATH made of `segs`.
pub fn encode(segs: &[Segment], width: AsWidth) -> Vec<u8> {
    let mut v = Vec::new();
    for s in segs {
        encode_segment(&mut v, s.kind, &s.asns, width);
    }
    v
}

/// RFC 6793 §4.2.3: the AS_PATH of a 2-octet speaker with AS4_PATH merged in — the leading
/// ASNs the AS4_PATH does not cover, then the AS4_PATH. An AS4_PATH longer than the AS_PATH
/// is ignored. An AS_SET counts as one AS (RFC 4271 §9.1.2.2).
pub fn merge_as4(path: Vec<Segment>, as4: Vec<Segment>) -> Vec<Segment> {
    let count = |segs: &[Segment]| segs.iter().map(|s| if s.kind == AS_SET { 1 } else { s.asns.len() }).sum::<usize>();
    let (n, n4) = (count(&path), count(&as4));
    if n4 > n {
        return path;
    }
    let mut keep = n - n4;
    let mut out: Vec<Segment> = Vec::new();
    for s in path {
        if keep == 0 {
            break;
        }
        if s.kind == AS_SET {
            out.push(s);
            keep -= 1;
        } else {
            let take = keep.min(s.asns.len());
            out.push(Segment { kind: s.kind, asns: s.asns[..take].to_vec() });
            keep -= take;
        }
    }
    // Adjacent AS_SEQUENCEs are one sequence, as a 4-octet speaker would have sent it.
    for s in as4 {
        match out.last_mut() {
            Some(prev) if prev.kind == AS_SEQUENCE && s.kind == AS_SEQUENCE => prev.asns.extend(s.asns),
            _ => out.push(s),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(asns: &[u32]) -> Segment {
        Segment { kind: AS_SEQUENCE, asns: asns.to_vec() }
    }

    #[test]
    fn two_octet_segments_decode_and_encode_back() {
        let v = [2, 2, 0xfd, 0xe9, 0xfd, 0xea, 1, 1, 0, 7];
        let segs = decode(&v, AsWidth::Two).unwrap();
        assert_eq!(segs, [seq(&[65001, 65002]), Segment { kind: AS_SET, asns: vec![7] }]);
        assert_eq!(encode(&segs, AsWidth::Two), v);
        assert_eq!(check(&v, AsWidth::Two), Ok(()));
    }

    #[test]
    fn four_octet_segments_decode_and_encode_back() {
        let v = [2, 1, 0xfa, 0x56, 0xea, 0x00];
        let segs = decode(&v, AsWidth::Four).unwrap();
        assert_eq!(segs, [seq(&[4_200_000_000])]);
        assert_eq!(encode(&segs, AsWidth::Four), v);
        assert_eq!(check(&v, AsWidth::Four), Ok(()));
        assert_eq!(encode(&segs, AsWidth::Two), [2, 1, 0x5b, 0xa0], "AS_TRANS on 2 octets");
    }

    #[test]
    fn an_as_set_is_valid_and_counts_as_one_in_the_merge() {
        let v = [1, 3, 0, 1, 0, 2, 0, 3];
        assert_eq!(check(&v, AsWidth::Two), Ok(()));
        let path = vec![seq(&[65001, 23456]), Segment { kind: AS_SET, asns: vec![1, 2, 3] }];
        let as4 = vec![seq(&[4_200_000_000]), Segment { kind: AS_SET, asns: vec![1, 2, 3] }];
        let merged = merge_as4(path, as4);
        assert_eq!(merged, [seq(&[65001, 4_200_000_000]), Segment { kind: AS_SET, asns: vec![1, 2, 3] }]);
    }

    #[test]
    fn long_paths_are_split_into_segments_of_255() {
        let asns: Vec<u32> = (1..=300).collect();
        let v = encode(&[seq(&asns)], AsWidth::Four);
        assert_eq!((v[0], v[1]), (AS_SEQUENCE, 255));
        assert_eq!(decode(&v, AsWidth::Four).map(|s| s.len()), Some(2));
    }

    #[test]
    fn a_bad_segment_type_is_refused_by_the_check_but_decoded_for_rewriting() {
        let v = [9, 1, 0, 0, 0, 1];
        assert!(check(&v, AsWidth::Four).is_err_and(|e| e.contains("segment type 9")));
        assert_eq!(decode(&v, AsWidth::Four).map(|s| s[0].kind), Some(9));
        let overrunning = [9, 5, 0, 1];
        assert!(check(&overrunning, AsWidth::Two).is_err_and(|e| e.contains("segment type 9")), "type first");
    }

    #[test]
    fn an_empty_segment_is_refused() {
        assert_eq!(check(&[2, 0], AsWidth::Two), Err("a segment has no AS numbers".into()));
        assert_eq!(check(&[], AsWidth::Two), Ok(()), "an empty AS_PATH is well formed");
    }

    #[test]
    fn overruns_and_cut_headers_are_errors_never_panics() {
        assert_eq!(
            check(&[2, 2, 0, 0, 0, 1], AsWidth::Four),
            Err("a segment of 2 AS numbers overruns the attribute".into())
        );
        assert_eq!(check(&[2, 1, 0, 1, 2], AsWidth::Two), Err("a segment header is cut short".into()));
        assert_eq!(decode(&[2, 2, 0, 0, 0, 1], AsWidth::Four), None);
        assert_eq!(decode(&[2, 1, 0, 1, 2], AsWidth::Two), None);
        assert_eq!(decode(&[0xff; 7], AsWidth::Four), None);
        assert_eq!(walk(&[2, 9], AsWidth::Two).count(), 1, "one error, then the walk ends");
    }

    #[test]
    fn as4_path_replaces_the_tail_it_covers() {
        // AS_PATH [65002, AS_TRANS, 65010], AS4_PATH [4200000000, 65010].
        let merged = merge_as4(vec![seq(&[65002, 23456, 65010])], vec![seq(&[4_200_000_000, 65010])]);
        assert_eq!(merged, [seq(&[65002, 4_200_000_000, 65010])]);
    }

    #[test]
    fn an_as4_path_longer_than_the_as_path_is_ignored() {
        let path = vec![seq(&[23456])];
        assert_eq!(merge_as4(path.clone(), vec![seq(&[1, 2])]), path);
    }
}
