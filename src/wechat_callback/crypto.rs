//! WeChat's message encryption for 兼容/安全 mode (wechat-protocol.md §3): AES-256-CBC with
//! IV = key[0..16], WeChat's own PKCS#7 padding to 32-byte blocks, plaintext
//! `random16 ‖ be_u32(len) ‖ msg ‖ appid`, base64 with padding. Pure; the signature of the
//! `Encrypt` text is `signature.rs`' business.

use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::Engine as _;

type Enc = cbc::Encryptor<aes::Aes256>;
type Dec = cbc::Decryptor<aes::Aes256>;

/// WeChat pads to multiples of 32 bytes (not AES's 16).
const PAD_BLOCK: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("EncodingAESKey must be 43 characters of [A-Za-z0-9+/]")]
    BadKey,
    #[error("Encrypt is not valid base64")]
    Base64,
    #[error("ciphertext length {0} is not a positive multiple of 16")]
    Length(usize),
    #[error("bad padding")]
    Padding,
    #[error("plaintext too short or its length field is out of range")]
    Frame,
    #[error("appid inside the ciphertext does not match")]
    AppId,
    #[error("decrypted message is not UTF-8")]
    Utf8,
}

/// The key and appid of one official account.
#[derive(Clone)]
pub struct Crypto {
    key: [u8; 32],
    appid: String,
}

impl std::fmt::Debug for Crypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crypto")
            .field("key", &"<redacted>")
            .field("appid", &self.appid)
            .finish()
    }
}

/// `base64_decode(EncodingAESKey + "=")`, ignoring the 2 trailing bits like WeChat's own
/// (Python/PHP) code does: the strict engine rejects the official sample key.
pub fn decode_key(encoding_aes_key: &str) -> Result<[u8; 32], CryptoError> {
    let k = encoding_aes_key.trim();
    if k.len() != 43 {
        return Err(CryptoError::BadKey);
    }
    let lenient = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let bytes = lenient
        .decode(format!("{k}="))
        .map_err(|_| CryptoError::BadKey)?;
    bytes.try_into().map_err(|_| CryptoError::BadKey)
}

impl Crypto {
    pub fn new(encoding_aes_key: &str, appid: &str) -> Result<Crypto, CryptoError> {
        Ok(Crypto {
            key: decode_key(encoding_aes_key)?,
            appid: appid.to_string(),
        })
    }

    pub fn appid(&self) -> &str {
        &self.appid
    }

    /// Encrypts `msg` with a fresh random prefix of 16 ASCII alphanumerics.
    pub fn encrypt(&self, msg: &str) -> String {
        use rand::distributions::Alphanumeric;
        use rand::Rng;
        let mut random = [0u8; 16];
        for (b, c) in random
            .iter_mut()
            .zip(rand::thread_rng().sample_iter(Alphanumeric))
        {
            *b = c;
        }
        self.encrypt_with(msg, &random)
    }

    /// Encrypts with a given random prefix (test vectors).
    pub fn encrypt_with(&self, msg: &str, random: &[u8; 16]) -> String {
        let mut plain = Vec::with_capacity(16 + 4 + msg.len() + self.appid.len() + PAD_BLOCK);
        plain.extend_from_slice(random);
        plain.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        plain.extend_from_slice(msg.as_bytes());
        plain.extend_from_slice(self.appid.as_bytes());
        let n = PAD_BLOCK - plain.len() % PAD_BLOCK;
        plain.extend(std::iter::repeat_n(n as u8, n));
        let iv: [u8; 16] = self.key[..16].try_into().expect("the key has 32 bytes");
        let len = plain.len();
        let out = Enc::new(&self.key.into(), &iv.into())
            .encrypt_padded_mut::<NoPadding>(&mut plain, len)
            .expect("the plaintext is padded to whole blocks");
        STANDARD.encode(out)
    }

    /// Decrypts an `Encrypt` value and checks the appid; the message XML.
    pub fn decrypt(&self, encrypt: &str) -> Result<String, CryptoError> {
        let data = STANDARD
            .decode(encrypt.trim())
            .map_err(|_| CryptoError::Base64)?;
        if data.is_empty() || data.len() % 16 != 0 {
            return Err(CryptoError::Length(data.len()));
        }
        let iv: [u8; 16] = self.key[..16].try_into().expect("the key has 32 bytes");
        let mut data = data;
        let plain = Dec::new(&self.key.into(), &iv.into())
            .decrypt_padded_mut::<NoPadding>(&mut data)
            .map_err(|_| CryptoError::Padding)?;
        let n = *plain.last().ok_or(CryptoError::Padding)? as usize;
        if !(1..=PAD_BLOCK).contains(&n) || n > plain.len() {
            return Err(CryptoError::Padding);
        }
        let plain = &plain[..plain.len() - n];
        if plain.len() < 20 {
            return Err(CryptoError::Frame);
        }
        let len = u32::from_be_bytes(plain[16..20].try_into().expect("4 bytes")) as usize;
        let rest = &plain[20..];
        if len > rest.len() {
            return Err(CryptoError::Frame);
        }
        let (msg, appid) = rest.split_at(len);
        if !crate::wechat_callback::signature::hex_eq_bytes(appid, self.appid.as_bytes()) {
            return Err(CryptoError::AppId);
        }
        String::from_utf8(msg.to_vec()).map_err(|_| CryptoError::Utf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat_callback::signature::msg_signature;

    const V1_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const V1_APPID: &str = "wxb11529c136998cb6";
    const V3_KEY: &str = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR";
    const V3_ID: &str = "wx49f0ab532d5d035a";

    fn v1() -> Crypto {
        Crypto::new(V1_KEY, V1_APPID).unwrap()
    }

    #[test]
    fn sample_keys_decode_leniently_to_the_documented_bytes() {
        assert_eq!(
            hex::encode(decode_key(V1_KEY).unwrap()),
            "69b71d79f8218a39259a7a29aabb2dbafc31cb3d35db7e39ebbf3d0010831051"
        );
        assert_eq!(
            hex::encode(decode_key(V3_KEY).unwrap()),
            "916c4f115d94103cb15a998f74a0b71787603c398ebdf297d471a71140d2d5a4"
        );
        assert_eq!(decode_key("short"), Err(CryptoError::BadKey));
        assert_eq!(decode_key(&"!".repeat(43)), Err(CryptoError::BadKey));
    }

    #[test]
    fn v1_encrypts_and_decrypts_exactly() {
        let e = v1().encrypt_with("我是中文abcd123", b"aaaabbbbccccdddd");
        assert_eq!(e, "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==");
        assert_eq!(v1().decrypt(&e).unwrap(), "我是中文abcd123");
        assert_eq!(
            msg_signature("pamtest", "1409304348", "xxxxxx", &e),
            "82c962d39941aa48552f90ef55aa323dc620cc10"
        );
    }

    #[test]
    fn v2_official_reply_xml_round_trips() {
        let msg = "<xml><ToUserName><![CDATA[oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw]]></ToUserName><FromUserName><![CDATA[gh_7f083739789a]]></FromUserName><CreateTime>1407743423</CreateTime><MsgType><![CDATA[video]]></MsgType><Video><MediaId><![CDATA[eYJ1MbwPRJtOvIEabaxHs7TX2D-HV71s79GUxqdUkjm6Gs2Ed1KF3ulAOA9H1xG0]]></MediaId><Title><![CDATA[testCallBackReplyVideo]]></Title><Description><![CDATA[testCallBackReplyVideo]]></Description></Video></xml>";
        let want = "jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWesxlkupqcEcW7ZQweImX9+wLMa0GaUzpkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIILHR8HLXa5nQvFb3tYPKAlHF3rtTeayNf0QuM+UW/wM9enGIDIJHF7CLHiDNAYxr+r+OrJCmPQyTy8cVWlu9iSvOHPT/77bZqJucQHQ04sq7KZI27OcqpQNSto2OdHCoTccjggX5Z9Mma0nMJBU+jLKJ38YB1fBIz+vBzsYjrTmFQ44YfeEuZ+xRTQwr92vhA9OxchWVINGC50qE/6lmkwWTwGX9wtQpsJKhP+oS7rvTY8+VdzETdfakjkwQ5/Xka042OlUb1/slTwo4RscuQ+RdxSGvDahxAJ6+EAjLt9d8igHngxIbf6YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZckqmA7FNERspKA5f8GoJ9sv8xmGvZ9Yrf57cExWtnX8aCMMaBropU/1k+hKP5LVdzbWCG0hGwx/dQudYR/eXp3P0XxjlFiy+9DMlaFExWUZQDajPkdPrEeOwofJb";
        assert_eq!(v1().encrypt_with(msg, b"aaaabbbbccccdddd"), want);
        assert_eq!(v1().decrypt(want).unwrap(), msg);
        assert_eq!(
            msg_signature("pamtest", "1409304348", "xxxxxx", want),
            "ea88b765074e41eb8c7a75b449db34fa2fd560d5"
        );
    }

    #[test]
    fn v3_wechatpy_vectors_pass() {
        let c = Crypto::new(V3_KEY, V3_ID).unwrap();
        let enc = "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=";
        assert_eq!(
            msg_signature("123456", "1411525903", "461056294", enc),
            "74d92dfeb87ba7c714f89d98870ae5eb62dff26d"
        );
        let plain = "<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName>\n<FromUserName><![CDATA[messense]]></FromUserName>\n<CreateTime>1411525903</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n<MsgId>4363689963896700987</MsgId>\n<AgentID>1</AgentID>\n</xml>";
        assert_eq!(c.decrypt(enc).unwrap(), plain);

        let reply = "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]></ToUserName>\n<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>";
        let want = "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3";
        assert_eq!(c.encrypt_with(reply, b"1234567890123456"), want);
        assert_eq!(
            msg_signature("123456", "1411525903", "461056294", want),
            "407518b7649e86ef23978113f92d27afa9296533"
        );

        let echo = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==";
        assert_eq!(c.decrypt(echo).unwrap(), "5927782489442352469");
    }

    #[test]
    fn v4_full_padding_block_and_v5_text_reply() {
        let e = v1().encrypt_with(&"a".repeat(26), b"aaaabbbbccccdddd");
        assert_eq!(e, "jn1L23DB+6ELqJ+6bruv26Bs5uYCV3HVmgeO4vSad7dLDr7+rnWyemcCRN5OR7WyYIOVZ+rWh44sv5pSbGODsKolwuzQmZIEVqYvwyIth36mxM82Fq0uc5AzBeGHP4YA");
        assert_eq!(v1().decrypt(&e).unwrap(), "a".repeat(26));
        let msg = "<xml><ToUserName><![CDATA[oia2Tj-user]]></ToUserName><FromUserName><![CDATA[gh_7f083739789a]]></FromUserName><CreateTime>1409304348</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好]]></Content></xml>";
        let e = v1().encrypt_with(msg, b"aaaabbbbccccdddd");
        assert_eq!(e, "jn1L23DB+6ELqJ+6bruv26vw+vrHHVra7MaHNA3j00WT9uydf9wgMFJpu7c1RLNYdXnlh2jlgJCRVrFUgcROMbai+Hgd5EwWigGVsXWCbK+ci3eGcdBmI4N5DkUCCliSw3Nk+OWR6kT3bskwb/AZgfUySYbqCDCpNUVhSP3tBT6SnRaA1ywKt6ZoRy4Lj8at26crMkRAxHAG6B6/rjSwHCq0A+MNNlgSMleqeuE5Glqy1OQH8p4/rxrsc3llvMdCa73Toc9geSH+qvHGnoAkxbk80vW023ho7HY1iu+AiEPUupbty0Ns/MHrjT6IQRKX4U3+RPdla6ijFCE42P5lK5kpaSPKBQPoyK0GRz9vsFP21I5xXlEw/9RQ3NcVOw4m");
        assert_eq!(
            msg_signature("pamtest", "1409304348", "xxxxxx", &e),
            "105b69ff9dca86df044173325d095e25ca918cb9"
        );
    }

    #[test]
    fn wrong_appid_bad_padding_and_garbage_are_refused() {
        let e = v1().encrypt("<xml/>");
        let other = Crypto::new(V1_KEY, "wxother").unwrap();
        assert_eq!(other.decrypt(&e), Err(CryptoError::AppId));
        assert_eq!(v1().decrypt("!!!"), Err(CryptoError::Base64));
        assert_eq!(v1().decrypt("AAAA"), Err(CryptoError::Length(3)));
        // 32 zero bytes decrypt to garbage whose last byte is almost never a valid pad.
        let junk = STANDARD.encode([0u8; 48]);
        assert!(v1().decrypt(&junk).is_err());
        // A random key: padding or frame errors, never a panic.
        for n in 1..64usize {
            let junk = STANDARD.encode(vec![n as u8; n * 16]);
            let _ = v1().decrypt(&junk);
        }
    }
}
