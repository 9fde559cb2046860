//! The rule pack file format as written by the bureau or the hospital (YAML + CSV).
//! These types are the source of the published JSON Schema (`claimgate rules schema`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `manifest.yaml`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Pack name, e.g. `national-baseline`.
    pub name: String,
    /// Pack revision, e.g. `2026.11.1`.
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// 医保区划 the pack applies to (`000000` national).
    #[serde(default)]
    pub region: String,
}

/// One `rules/*.yaml` file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    pub rules: Vec<RuleSource>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// 事前提醒: the doctor is told; the claim goes through.
    Remind,
    /// 事中拦截: the claim is stopped.
    Block,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    /// 可疑.
    Warning,
    /// 明确违规.
    Critical,
}

/// A rule as written.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSource {
    /// Unique in the pack; the national rule code where one exists.
    pub id: String,
    /// Chinese rule name.
    pub name: String,
    /// The rule kind (see docs/rule-format.md).
    pub kind: String,
    pub action: Action,
    /// A doctor may continue past a block with a reason (3103 `dspo_way` 1).
    #[serde(default)]
    pub overridable: bool,
    /// Points a doctor would lose under 驾照式记分 (医保支付资格管理) if an item this rule blocks
    /// went through; absent when the pack does not say. Used by the office's statistics only.
    #[serde(default)]
    pub points: Option<u32>,
    pub severity: Severity,
    /// Chinese message template with `{variable}` placeholders.
    pub message: String,
    /// Policy basis (文件依据).
    pub basis: String,
    /// `yyyy-MM-dd`, compared with each line's service date.
    #[serde(default)]
    pub effective_from: Option<String>,
    /// `yyyy-MM-dd`, inclusive.
    #[serde(default)]
    pub effective_until: Option<String>,
    #[serde(default)]
    pub select: Select,
    #[serde(default)]
    pub when: When,
    /// Kind-specific parameters.
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
}

/// Which lines a rule concerns.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Select {
    pub codes: Vec<String>,
    pub code_prefixes: Vec<String>,
    pub code_patterns: Vec<String>,
    pub his_codes: Vec<String>,
    pub name_patterns: Vec<String>,
    /// A CSV knowledge table, relative to the pack folder.
    pub table: Option<String>,
    /// `western_drug`, `patent_drug`, `drug`, `herbal`, `service`, `material`.
    pub item_classes: Vec<String>,
    /// `med_chrgitm_type` values.
    pub categories: Vec<String>,
}

impl Select {
    pub fn has_identity(&self) -> bool {
        !(self.codes.is_empty()
            && self.code_prefixes.is_empty()
            && self.code_patterns.is_empty()
            && self.his_codes.is_empty()
            && self.name_patterns.is_empty()
            && self.table.is_none())
    }
}

/// Claim-level scope.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct When {
    /// `outpatient`, `inpatient`, `pharmacy`.
    pub visit: Option<String>,
    pub med_types: Vec<String>,
    pub insutypes: Vec<String>,
    /// Ordering department codes; a trailing `%` is a prefix.
    pub depts: Vec<String>,
    pub not_depts: Vec<String>,
}

/// A row of a `code,name,param,basis` knowledge table.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TableRow {
    pub code: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub param: String,
    #[serde(default)]
    pub basis: String,
    /// Optional: the published text behind the row (a 限定支付范围), shown to people as `{note}`.
    #[serde(default)]
    pub note: String,
}

/// A row of a `main,main_name,sub,sub_name,window,basis` pair table.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct PairRow {
    pub main: String,
    #[serde(default)]
    pub main_name: String,
    pub sub: String,
    #[serde(default)]
    pub sub_name: String,
    #[serde(default)]
    pub window: String,
    #[serde(default)]
    pub basis: String,
}

/// A test case in `tests/*.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    pub cases: Vec<TestCase>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    pub name: String,
    #[serde(default)]
    pub context: Vec<Exchange>,
    pub envelope: serde_json::Value,
    /// The gateway's answer to `envelope`, for a pre-settlement (2206/2303), which is checked on
    /// its way back with the fund shares the gateway computed.
    #[serde(default)]
    pub answer: Option<serde_json::Value>,
    pub expect: Expect,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    pub request: serde_json::Value,
    #[serde(default)]
    pub response: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `pass`, `remind` or `block`; omitted: not checked (generated cases that name only their rule).
    #[serde(default)]
    pub decision: Option<String>,
    #[serde(default)]
    pub hits: Option<Vec<ExpectHit>>,
    /// Hits that must be among the decision's hits (others may be there too).
    #[serde(default)]
    pub hits_include: Vec<ExpectHit>,
    /// Rule ids that must not hit.
    #[serde(default)]
    pub hits_exclude: Vec<String>,
    #[serde(default)]
    pub unchecked: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectHit {
    pub rule_id: String,
    #[serde(default)]
    pub lines: Vec<String>,
}

/// The JSON Schema of a rule file, as shipped in `rulesets/rule-file.schema.json`.
pub fn rule_file_schema() -> String {
    let schema = schemars::schema_for!(RuleFile);
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}
