//! Why a message could not be read. Every variant names the field for the caller.

/// A message claimgate cannot read. Shown to the HIS in `err_msg` (Chinese prefix added by the
/// renderer), so every variant names the field.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("JSON nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    #[error("body not complete within {0} ms")]
    BodyTimeout(u64),
    /// The head was read but the body could not be (a chunk size that is not hex, the connection
    /// closed before the declared length).
    #[error("body could not be read: {0}")]
    Body(String),
    #[error("{0}: required field is missing or empty")]
    Missing(String),
    #[error("{path}: {reason}")]
    Field { path: String, reason: String },
    #[error("infno {0}: no claim in this transaction")]
    NotAClaim(String),
    #[error("input is encrypted ({0}); it cannot be checked")]
    Encrypted(String),
}

impl ParseError {
    pub(crate) fn from_path(prefix: &str, e: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let inner = e.inner().to_string();
        let path = e.path().to_string();
        if path.is_empty() || path == "." {
            return ParseError::Json(inner);
        }
        let path = if prefix.is_empty() { path } else { format!("{prefix}.{path}") };
        // serde's text ends with " at line L column C"; keep it, it helps integrators.
        ParseError::Field { path, reason: inner }
    }

    pub fn field(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ParseError::Field { path: path.into(), reason: reason.into() }
    }

    /// What the cashier reads in `err_msg`: the field path and the reason in Chinese (the English
    /// detail follows in the renderer, for the integrator).
    pub fn reason_zh(&self) -> String {
        match self {
            ParseError::Json(e) if e.contains("UTF-8") => "报文不是UTF-8编码的JSON".into(),
            ParseError::Json(e) if e.starts_with("EOF while parsing a value at line 1 column 0") => {
                "请求体为空（应为JSON交易报文）".into()
            }
            ParseError::Json(_) => "报文不是合法的JSON".into(),
            ParseError::TooDeep(n) => format!("报文JSON嵌套超过{n}层"),
            ParseError::TooLarge(n) => format!("报文超过{n}字节"),
            ParseError::BodyTimeout(ms) => format!("请求体未在{ms}毫秒内传完，连接已关闭"),
            ParseError::Body(_) => "请求体未能完整读取（分块编码有误或连接提前关闭），未处理".into(),
            ParseError::Missing(p) => format!("{p}：必填字段缺失或为空"),
            ParseError::Field { path, reason } => format!("{path}：{}", field_reason_zh(reason)),
            ParseError::NotAClaim(i) => format!("交易{i}中没有可审核的费用或结算信息"),
            ParseError::Encrypted(e) => format!("input为加密报文（{e}），无法审核"),
        }
    }
}

/// A field's reason in Chinese, from the (English, static or serde's) reason text.
fn field_reason_zh(reason: &str) -> &'static str {
    const TABLE: &[(&str, &str)] = &[
        ("negative value not allowed", "该字段按接口规范不能为负数"),
        ("negative unit price", "单价不能为负数"),
        ("negative days", "天数不能为负数"),
        ("exponent not allowed", "数值不得使用科学计数法（应为普通小数，如12.50）"),
        ("too many decimal places", "小数位数超过接口规定（金额最多2位小数）"),
        ("out of range", "数值超出接口规定的范围"),
        ("not a decimal number", "不是合法的数值"),
        ("not a finite number", "不是合法的数值"),
        ("must be a string", "必须是字符串，不能是数字"),
        ("not an object", "必须是JSON对象"),
        ("invalid type", "数据类型错误（应为字符串或数值）"),
        ("not a date-time", "不是合法的日期时间（yyyy-MM-dd HH:mm:ss）"),
        ("not a date", "不是合法的日期（yyyy-MM-dd）"),
        ("more than one visit", "一次上传中含有多个就诊（mdtrt_id）的明细"),
        ("more than one person", "一次上传中含有多个参保人（psn_no）的明细"),
        ("duplicate", "字段或编号重复"),
        ("does not match the infno", "与URL路径中的交易编号不一致"),
        ("invalid length", "数组长度不正确"),
    ];
    TABLE.iter().find(|(en, _)| reason.contains(en)).map_or("格式不正确", |(_, zh)| zh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_reads_in_chinese_with_its_path() {
        let e = ParseError::field("input.data.medfee_sumamt", "exponent not allowed in a decimal at line 1 column 40");
        assert_eq!(e.reason_zh(), "input.data.medfee_sumamt：数值不得使用科学计数法（应为普通小数，如12.50）");
        assert_eq!(ParseError::Missing("msgid".into()).reason_zh(), "msgid：必填字段缺失或为空");
        let e = ParseError::field("input.x", "invalid type: boolean `true`, expected a decimal number");
        assert!(e.reason_zh().ends_with("数据类型错误（应为字符串或数值）"));
        assert!(ParseError::field("input.x", "something new").reason_zh().ends_with("格式不正确"));
    }
}
