//! The national envelope (国家医保平台 通用报文): request and response headers.

use super::text::Text;
use super::tx::FeeUploadInput;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::{Mutex, PoisonError};

/// The request envelope with `input` left as raw JSON, so that the route can be decided by `infno`
/// before the body is parsed, and a relayed transaction is never parsed beyond its header.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct RequestHead<'a> {
    pub infno: Text,
    pub msgid: MsgId,
    pub mdtrtarea_admvs: Text,
    pub insuplc_admdvs: Text,
    pub recer_sys_code: Text,
    pub infver: Text,
    pub opter_type: Text,
    pub opter: Text,
    pub opter_name: Text,
    pub inf_time: Text,
    pub fixmedins_code: Text,
    pub fixmedins_name: Text,
    pub sign_no: Text,
    /// `"SM4"` when `input` is Base64 ciphertext (吉林).
    pub enc_type: Text,
    #[serde(borrow)]
    pub input: Option<&'a RawValue>,
    /// A fee upload's `input`, parsed in the same pass as the head by [`super::parse_request`]
    /// (then `input` is `None`); taken by the first reader ([`RequestHead::take_fee`]). Behind a
    /// mutex so that a head is `Sync`: an exchange is shared by the route and the blocking pool.
    #[serde(skip)]
    fee: Mutex<Option<Box<FeeUploadInput>>>,
}

impl RequestHead<'_> {
    /// The head's fields without `input`, owning nothing of the body: kept for learning from an
    /// upload whose claims the check already built, so the body is not read a third time.
    pub fn detached(&self) -> RequestHead<'static> {
        RequestHead {
            infno: self.infno.clone(),
            msgid: self.msgid.clone(),
            mdtrtarea_admvs: self.mdtrtarea_admvs.clone(),
            insuplc_admdvs: self.insuplc_admdvs.clone(),
            recer_sys_code: self.recer_sys_code.clone(),
            infver: self.infver.clone(),
            opter_type: self.opter_type.clone(),
            opter: self.opter.clone(),
            opter_name: self.opter_name.clone(),
            inf_time: self.inf_time.clone(),
            fixmedins_code: self.fixmedins_code.clone(),
            fixmedins_name: self.fixmedins_name.clone(),
            sign_no: self.sign_no.clone(),
            enc_type: self.enc_type.clone(),
            input: None,
            fee: Mutex::new(None),
        }
    }

    /// The person a message is about (`input.data.psn_no`), read without the rest of the input;
    /// `None` for ciphertext, a fee upload (its person is on each line) or no person.
    pub fn person(&self) -> Option<Text> {
        #[derive(Deserialize)]
        struct Input {
            data: Option<Data>,
        }
        #[derive(Deserialize)]
        struct Data {
            psn_no: Option<Text>,
        }
        let raw = self.input?;
        let input: Input = serde_json::from_str(raw.get()).ok()?;
        input.data?.psn_no.filter(|p| !p.as_str().is_empty())
    }

    /// A fee upload's `input` as the one-pass parse read it; `None` once taken, or when the input
    /// is still raw JSON borrowed from the body (any other transaction).
    pub fn take_fee(&self) -> Option<Box<FeeUploadInput>> {
        self.fee.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// Looks at the parsed fee upload without taking it.
    pub fn with_fee<R>(&self, f: impl FnOnce(Option<&FeeUploadInput>) -> R) -> R {
        f(self.fee.lock().unwrap_or_else(PoisonError::into_inner).as_deref())
    }
}

/// `msgid` (发送方报文ID, C30): the text, and whether the HIS sent it as a JSON number, which a claim
/// may not (a 30-digit number loses digits in any JSON reader, and retries are matched by msgid).
/// Derefs to its [`Text`], so relayed transactions read it as before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MsgId {
    text: Text,
    numeric: bool,
}

impl MsgId {
    /// Whether the HIS sent a JSON number instead of a string.
    pub fn is_numeric(&self) -> bool {
        self.numeric
    }
}

impl std::ops::Deref for MsgId {
    type Target = Text;
    fn deref(&self) -> &Text {
        &self.text
    }
}

impl From<&str> for MsgId {
    fn from(s: &str) -> Self {
        MsgId { text: Text::from(s), numeric: false }
    }
}

impl<'de> Deserialize<'de> for MsgId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The token's first byte says whether it was a string; `Text` then reads it as usual.
        let raw = <Option<&'de RawValue>>::deserialize(d)?;
        let Some(raw) = raw else { return Ok(MsgId::default()) };
        let numeric = raw.get().starts_with(|c: char| c == '-' || c.is_ascii_digit());
        let text: Text = serde_json::from_str(raw.get()).map_err(serde::de::Error::custom)?;
        Ok(MsgId { text, numeric })
    }
}

/// The request in one pass (see [`super::parse_request`]): the head, and a fee upload's `input`
/// parsed as it is met when `infno` came before it. Anything unusual — a key with an escape, a
/// field twice, an `input` that is not an object — is an error here, and the caller falls back to
/// the two-step parse, whose errors name the field.
pub(super) struct OnePass<'a>(pub RequestHead<'a>);

impl<'de> Deserialize<'de> for OnePass<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(OnePassVisitor)
    }
}

struct OnePassVisitor;

impl<'de> serde::de::Visitor<'de> for OnePassVisitor {
    type Value = OnePass<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a request envelope")
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut m: M) -> Result<OnePass<'de>, M::Error> {
        use serde::de::Error;
        let mut h = RequestHead::default();
        let mut seen = 0u16;
        while let Some(k) = m.next_key::<&'de str>()? {
            let (bit, slot) = match k {
                "infno" => (0, &mut h.infno),
                "msgid" => {
                    if seen & (1 << 1) != 0 {
                        return Err(M::Error::custom("duplicate field `msgid`"));
                    }
                    seen |= 1 << 1;
                    h.msgid = m.next_value()?;
                    continue;
                }
                "mdtrtarea_admvs" => (2, &mut h.mdtrtarea_admvs),
                "insuplc_admdvs" => (3, &mut h.insuplc_admdvs),
                "recer_sys_code" => (4, &mut h.recer_sys_code),
                "infver" => (5, &mut h.infver),
                "opter_type" => (6, &mut h.opter_type),
                "opter" => (7, &mut h.opter),
                "opter_name" => (8, &mut h.opter_name),
                "inf_time" => (9, &mut h.inf_time),
                "fixmedins_code" => (10, &mut h.fixmedins_code),
                "fixmedins_name" => (11, &mut h.fixmedins_name),
                "sign_no" => (12, &mut h.sign_no),
                "enc_type" => (13, &mut h.enc_type),
                "input" => {
                    if seen & (1 << 14) != 0 {
                        return Err(M::Error::custom("duplicate field `input`"));
                    }
                    seen |= 1 << 14;
                    let infno = super::Infno::parse(h.infno.as_str());
                    if matches!(infno, super::Infno::OutpatientFeeUpload | super::Infno::InpatientFeeUpload) {
                        *h.fee.get_mut().unwrap_or_else(PoisonError::into_inner) =
                            Some(Box::new(m.next_value::<FeeUploadInput>()?));
                    } else {
                        h.input = m.next_value()?;
                    }
                    continue;
                }
                _ => {
                    m.next_value::<serde::de::IgnoredAny>()?;
                    continue;
                }
            };
            if seen & (1 << bit) != 0 {
                return Err(M::Error::custom("duplicate field"));
            }
            seen |= 1 << bit;
            *slot = m.next_value()?;
        }
        Ok(OnePass(h))
    }
}

/// The response envelope as the gateway sends it (and as claimgate answers in its place).
#[derive(Debug, Deserialize, Serialize, Default, Clone)]
#[serde(default)]
pub struct ResponseEnvelope {
    /// 0 success, -1 failure. Some gateways send it as a string.
    pub infcode: Text,
    pub inf_refmsgid: Text,
    pub refmsg_time: Text,
    pub respond_time: Text,
    pub err_msg: Option<String>,
    pub warn_msg: Option<String>,
    /// Kept as raw text: most answers are only relayed, so the tree is parsed by the few callers
    /// that read it ([`ResponseEnvelope::output_as`]), into the type they need.
    pub output: Option<Box<serde_json::value::RawValue>>,
}

impl ResponseEnvelope {
    /// Success as the gateways mean it: `infcode` 0 and no error text
    /// (湖南 answers `infcode=0` with a non-empty `err_msg` on failure).
    pub fn is_success(&self) -> bool {
        let err_empty = self.err_msg.as_deref().is_none_or(|e| e.trim().is_empty());
        self.infcode.as_str() == "0" && err_empty
    }

    /// `output` read as `T`; `None` when absent or not of that shape.
    pub fn output_as<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        self.output.as_ref().and_then(|o| serde_json::from_str(o.get()).ok())
    }
}

/// The answer claimgate writes itself (a block, a local 3101/3102/3103 answer, an error).
/// Field order follows the gateways' own answers.
#[derive(Debug, Serialize)]
pub struct OwnResponse<'a, T: Serialize> {
    pub infcode: i32,
    pub inf_refmsgid: &'a str,
    pub refmsg_time: &'a str,
    pub respond_time: &'a str,
    pub err_msg: Option<&'a str>,
    pub warn_msg: Option<&'a str>,
    pub output: T,
}

/// A recorded exchange `{"request": envelope, "response": envelope}` as its two parts; anything
/// else is a bare request envelope with no answer.
pub fn split_exchange(v: serde_json::Value) -> (serde_json::Value, Option<serde_json::Value>) {
    match v {
        serde_json::Value::Object(mut m) if m.contains_key("request") && !m.contains_key("infno") => {
            (m.remove("request").unwrap_or_default(), m.remove("response"))
        }
        other => (other, None),
    }
}
