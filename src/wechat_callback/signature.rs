//! WeChat's callback signatures (wechat-protocol.md §1, §3): SHA1 over the sorted parts,
//! lowercase hex, compared in constant time. Pure; no I/O, no axum.

use sha1::{Digest, Sha1};

/// hex(sha1(concat(sort(parts)))): `signature` with [token, timestamp, nonce],
/// `msg_signature` with [token, timestamp, nonce, Encrypt].
pub fn sha1_sorted(parts: &[&str]) -> String {
    let mut parts = parts.to_vec();
    parts.sort_unstable();
    let mut h = Sha1::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// WeChat's plain signature: hex(sha1(sorted(token, timestamp, nonce) joined)).
pub fn signature(token: &str, timestamp: &str, nonce: &str) -> String {
    sha1_sorted(&[token, timestamp, nonce])
}

/// The `msg_signature` of an encrypted message.
pub fn msg_signature(token: &str, timestamp: &str, nonce: &str, encrypt: &str) -> String {
    sha1_sorted(&[token, timestamp, nonce, encrypt])
}

/// Constant-time comparison of a computed hex digest with the given one (case-insensitive).
pub fn hex_eq(want: &str, given: &str) -> bool {
    want.len() == given.len()
        && want
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b.to_ascii_lowercase()))
            == 0
}

/// Constant-time byte comparison (the appid inside a ciphertext).
pub fn hex_eq_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks the `signature` query parameter.
pub fn verify(token: &str, timestamp: &str, nonce: &str, given: &str) -> bool {
    hex_eq(&signature(token, timestamp, nonce), given)
}

/// Checks the `msg_signature` query parameter against the raw `Encrypt` text.
pub fn verify_msg(token: &str, timestamp: &str, nonce: &str, encrypt: &str, given: &str) -> bool {
    hex_eq(&msg_signature(token, timestamp, nonce, encrypt), given)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_signature_vectors_of_the_protocol_file_pass() {
        assert_eq!(
            signature("AAAAA", "1714036504", "1514711492"),
            "f464b24fc39322e44b38aa78f5edd27bd1441696"
        );
        assert!(verify(
            "test",
            "1410685589",
            "test",
            "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"
        ));
        assert!(!verify(
            "test",
            "1410685589",
            "tesT",
            "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"
        ));
        assert_eq!(
            sha1_sorted(&["123", "345"]),
            "9f537aeb751ec72605f57f94a2f6dc3e3958e1dd"
        );
        assert_eq!(
            sha1_sorted(&["789", "456", "123"]),
            "f7c3bc1d808e04732adf679965ccc34ca7ae3441"
        );
    }

    #[test]
    fn msg_signature_vectors_of_the_protocol_file_pass() {
        let v1 = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==";
        assert_eq!(
            msg_signature("pamtest", "1409304348", "xxxxxx", v1),
            "82c962d39941aa48552f90ef55aa323dc620cc10"
        );
        let echo = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==";
        assert!(verify_msg(
            "123456",
            "1411443780",
            "437374425",
            echo,
            "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96"
        ));
        assert!(!verify_msg(
            "123456",
            "1411443780",
            "437374424",
            echo,
            "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96"
        ));
    }
}
