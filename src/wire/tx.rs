//! Transaction bodies (`input` / `output`) of the claim-relevant transactions.
//! Field names are the national interface's; see `shared/domain.md` Part A.
//! Every struct is `#[serde(default)]`: presence of required fields is checked when a claim is
//! normalised, where the error can name the field's full path.
//! A request's decimals are read strictly (`num::signed`, `num::unsigned`: the national `N16,S`,
//! no exponent, no sign where the field cannot be negative), so a message the gateway would
//! misread is refused before it leaves; the gateway's answers are read leniently (`opt_fixed`).

use super::num::{opt_fixed, signed, unsigned, Amount, Quantity, UnitPrice};
use super::text::Text;
use serde::Deserialize;
use smol_str::SmolStr;

// === 2204 / 2301 fee detail upload ===

/// 2204 / 2301 `input`. Read from a JSON object only: serde's derived structs also take an array
/// (`"input": []` would read as an upload of no lines), which no HIS means.
#[derive(Debug, Default)]
pub struct FeeUploadInput {
    pub feedetail: Vec<FeeDetail>,
}

impl<'de> Deserialize<'de> for FeeUploadInput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FeeUploadInput;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object with feedetail[]")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut m: M) -> Result<FeeUploadInput, M::Error> {
                let mut feedetail = None;
                while let Some(k) = m.next_key::<std::borrow::Cow<'de, str>>()? {
                    if k == "feedetail" {
                        if feedetail.is_some() {
                            return Err(serde::de::Error::duplicate_field("feedetail"));
                        }
                        feedetail = Some(m.next_value::<Option<Vec<FeeDetail>>>()?.unwrap_or_default());
                    } else {
                        m.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(FeeUploadInput { feedetail: feedetail.unwrap_or_default() })
            }
        }
        d.deserialize_map(V)
    }
}

/// One `feedetail[]` line of 2204 (门诊) or 2301 (住院).
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct FeeDetail {
    pub feedetl_sn: Text,
    pub init_feedetl_sn: Text,
    pub mdtrt_id: Text,
    pub drord_no: Text,
    pub psn_no: Text,
    pub med_type: Text,
    pub fee_ocur_time: Text,
    pub med_list_codg: Text,
    pub medins_list_codg: Text,
    #[serde(deserialize_with = "signed")]
    pub det_item_fee_sumamt: Option<Amount>,
    #[serde(deserialize_with = "signed")]
    pub cnt: Option<Quantity>,
    #[serde(deserialize_with = "unsigned")]
    pub pric: Option<UnitPrice>,
    pub bilg_dept_codg: Text,
    pub bilg_dept_name: Text,
    pub bilg_dr_codg: Text,
    pub bilg_dr_name: Text,
    pub acord_dept_codg: Text,
    pub acord_dept_name: Text,
    pub orders_dr_code: Text,
    pub orders_dr_name: Text,
    pub hosp_appr_flag: Text,
    pub tcmdrug_used_way: Text,
    pub etip_flag: Text,
    pub etip_hosp_code: Text,
    pub dscg_tkdrug_flag: Text,
    pub matn_fee_flag: Text,
    // 2204 only
    pub chrg_bchno: Text,
    pub dise_codg: Text,
    pub rxno: Text,
    pub rx_circ_flag: Text,
    pub sin_dos_dscr: Text,
    pub used_frqu_dscr: Text,
    #[serde(deserialize_with = "unsigned")]
    pub prd_days: Option<Quantity>,
    pub medc_way_dscr: Text,
    pub memo: Text,
    /// 药品追溯码 where a province carries it on the fee line (several boxes comma-separated).
    pub drug_trac_codg: Text,
    /// The newer node: one entry per box.
    pub drugtracinfo: Vec<DrugTrace>,
    /// Regional extension object (江苏 tcmherb_prov_code …; some provinces put `drug_trac_codg` here).
    #[serde(rename = "expContent")]
    pub exp_content: Option<serde_json::Value>,
}

/// One box's trace code: `drugtracinfo[]` of a fee line or 3505, `drug_trac_info[]` of 2207
/// (which names the line by `feedetl_sn`).
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct DrugTrace {
    pub feedetl_sn: Text,
    pub drug_trac_codg: Text,
    /// 拆零标志.
    pub trdn_flag: Text,
}

/// Trace codes from the fields that carry them (several boxes may share one field, separated by
/// commas, semicolons or spaces), deduplicated in order.
pub fn trace_codes<'a>(fields: impl IntoIterator<Item = &'a str>) -> Vec<SmolStr> {
    let mut v: Vec<SmolStr> = Vec::new();
    for f in fields {
        for c in f.split([',', ';', '，', '；', ' ']).map(str::trim).filter(|c| !c.is_empty()) {
            if !v.iter().any(|x| x == c) {
                v.push(SmolStr::new(c));
            }
        }
    }
    v
}

// === 3505 商品销售 / 3506 退货 ===

/// 3505 `input.selinfo` (one sale), 3505A `input.selinfoDetail[]` (a batch), 3506 `input.selinfo`.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct DrugSaleInput {
    pub selinfo: Option<DrugSale>,
    #[serde(rename = "selinfoDetail")]
    pub selinfo_detail: Vec<DrugSale>,
}

impl DrugSaleInput {
    pub fn sales(&self) -> impl Iterator<Item = &DrugSale> {
        self.selinfo.iter().chain(self.selinfo_detail.iter())
    }
}

/// One sale (or return) of a drug by a pharmacy or a hospital's dispensary.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct DrugSale {
    pub med_list_codg: Text,
    pub fixmedins_hilist_id: Text,
    pub fixmedins_hilist_name: Text,
    pub fixmedins_bchno: Text,
    pub setl_id: Text,
    pub mdtrt_sn: Text,
    pub psn_no: Text,
    pub rtal_docno: Text,
    pub rxno: Text,
    pub trdn_flag: Text,
    #[serde(deserialize_with = "unsigned")]
    pub finl_trns_pric: Option<UnitPrice>,
    #[serde(deserialize_with = "signed")]
    pub sel_retn_cnt: Option<Quantity>,
    pub sel_retn_time: Text,
    /// Older spec: one flat code.
    pub drug_trac_codg: Text,
    /// Newer spec: one entry per box.
    pub drugtracinfo: Vec<DrugTrace>,
}

impl DrugSale {
    /// The trace codes of the boxes, whichever node carries them.
    pub fn trace_codes(&self) -> Vec<SmolStr> {
        trace_codes(
            std::iter::once(self.drug_trac_codg.as_str())
                .chain(self.drugtracinfo.iter().map(|t| t.drug_trac_codg.as_str())),
        )
    }
    /// The sale's own id: 零售单据号, else the institution's batch number.
    pub fn doc_id(&self) -> &str {
        self.rtal_docno.opt().or(self.fixmedins_bchno.opt()).or(self.rxno.opt()).unwrap_or("")
    }
}

// === 2205 / 2302 revocation, 2206/2207/2303/2304 settlement, 2208/2305 cancel ===

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct DataInput<T> {
    pub data: T,
}

/// 2205 `data{mdtrt_id, chrg_bchno, psn_no}` and 2302 `data{feedetl_sn, mdtrt_id, psn_no}`.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct FeeRevoke {
    pub mdtrt_id: Text,
    pub psn_no: Text,
    /// 2205: "0000" revokes every unsettled line of the visit.
    pub chrg_bchno: Text,
    /// 2302: "0000" revokes every unsettled line of the stay.
    pub feedetl_sn: Text,
}

/// 2206/2207 (门诊) and 2303/2304 (住院) settlement input.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct Settle {
    pub psn_no: Text,
    pub mdtrt_cert_type: Text,
    pub mdtrt_cert_no: Text,
    pub med_type: Text,
    #[serde(deserialize_with = "unsigned")]
    pub medfee_sumamt: Option<Amount>,
    pub psn_setlway: Text,
    pub mdtrt_id: Text,
    pub chrg_bchno: Text,
    pub insutype: Text,
    pub acct_used_flag: Text,
    pub invono: Text,
    pub mid_setl_flag: Text,
    #[serde(deserialize_with = "unsigned")]
    pub fulamt_ownpay_amt: Option<Amount>,
    #[serde(deserialize_with = "unsigned")]
    pub overlmt_selfpay: Option<Amount>,
    #[serde(deserialize_with = "unsigned")]
    pub preselfpay_amt: Option<Amount>,
    #[serde(deserialize_with = "unsigned")]
    pub inscp_scp_amt: Option<Amount>,
    /// 2207 表90: the trace codes of the boxes dispensed, by fee line.
    pub drug_trac_info: Vec<DrugTrace>,
}

/// 2208 / 2305 `data{setl_id, mdtrt_id, psn_no}`.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct SettleCancel {
    pub setl_id: Text,
    pub mdtrt_id: Text,
    pub psn_no: Text,
}

/// The settlement answer `output.setlinfo` (the fields claimgate learns from).
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct SettleOutput {
    pub setlinfo: SetlInfo,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct SetlInfo {
    pub mdtrt_id: Text,
    pub setl_id: Text,
    pub psn_no: Text,
    pub gend: Text,
    pub brdy: Text,
    pub insutype: Text,
    pub psn_type: Text,
    pub setl_time: Text,
    pub med_type: Text,
    #[serde(deserialize_with = "opt_fixed")]
    pub medfee_sumamt: Option<Amount>,
    #[serde(deserialize_with = "opt_fixed")]
    pub hifp_pay: Option<Amount>,
    #[serde(deserialize_with = "opt_fixed")]
    pub fund_pay_sumamt: Option<Amount>,
    #[serde(deserialize_with = "opt_fixed")]
    pub psn_cash_pay: Option<Amount>,
    #[serde(deserialize_with = "opt_fixed")]
    pub acct_pay: Option<Amount>,
}

// === 2201 registration, 2203 visit info, 2401 admission, 2402 discharge ===

/// 2201 门诊挂号 `data`.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct Register {
    pub psn_no: Text,
    pub insutype: Text,
    pub begntime: Text,
    pub mdtrt_cert_type: Text,
    pub ipt_otp_no: Text,
    pub atddr_no: Text,
    pub dr_name: Text,
    pub dept_code: Text,
    pub dept_name: Text,
    pub caty: Text,
    /// Not in the national 2201, but some provinces send it.
    pub med_type: Text,
}

/// The answer to 2201 (`output.data`) and 2401 (`output.result`, some provinces `output.data`).
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct VisitIdOutput {
    pub data: Option<VisitId>,
    pub result: Option<VisitId>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct VisitId {
    pub mdtrt_id: Text,
    pub psn_no: Text,
    pub ipt_otp_no: Text,
}

/// 2203 门诊就诊信息上传 and 2401 入院办理 share `mdtrtinfo` + `diseinfo[]`.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct VisitInfoInput {
    pub mdtrtinfo: MdtrtInfo,
    pub diseinfo: Vec<DiseInfo>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct MdtrtInfo {
    pub mdtrt_id: Text,
    pub psn_no: Text,
    pub insutype: Text,
    pub med_type: Text,
    pub begntime: Text,
    pub main_cond_dscr: Text,
    pub dise_codg: Text,
    pub dise_name: Text,
    pub ipt_no: Text,
    pub atddr_no: Text,
    pub chfpdr_name: Text,
    pub adm_diag_dscr: Text,
    pub adm_dept_codg: Text,
    pub adm_dept_name: Text,
    pub adm_bed: Text,
    pub dscg_maindiag_code: Text,
    pub dscg_maindiag_name: Text,
    pub birctrl_type: Text,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct DiseInfo {
    pub diag_type: Text,
    pub maindiag_flag: Text,
    pub diag_srt_no: Text,
    pub diag_code: Text,
    pub diag_name: Text,
    pub adm_cond: Text,
    pub diag_dept: Text,
    pub diag_time: Text,
    pub vali_flag: Text,
}

/// 2402 出院办理.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct DischargeInput {
    pub dscginfo: DscgInfo,
    pub diseinfo: Vec<DiseInfo>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct DscgInfo {
    pub mdtrt_id: Text,
    pub psn_no: Text,
    pub insutype: Text,
    pub endtime: Text,
    pub dise_codg: Text,
    pub dise_name: Text,
    pub dscg_dept_codg: Text,
    pub dscg_way: Text,
}

// === 1101 person query answer ===

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct PersonOutput {
    pub baseinfo: BaseInfo,
    pub insuinfo: Vec<InsuInfo>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct BaseInfo {
    pub psn_no: Text,
    pub gend: Text,
    pub brdy: Text,
    pub age: Text,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct InsuInfo {
    pub insutype: Text,
    pub psn_type: Text,
    pub psn_insu_stas: Text,
    pub insuplc_admdvs: Text,
    pub cvlserv_flag: Text,
}

// === 3101 / 3102 明细审核, 3103 反馈 ===

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct Analysis {
    pub syscode: Text,
    pub task_id: Text,
    pub trig_scen: Text,
    pub rule_ids: Vec<Text>,
    pub patient_dtos: Vec<PatientDto>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct PatientDto {
    pub patn_id: Text,
    pub gend: Text,
    pub brdy: Text,
    pub poolarea: Text,
    pub curr_mdtrt_id: Text,
    pub fsi_encounter_dtos: Vec<EncounterDto>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct EncounterDto {
    pub mdtrt_id: Text,
    pub medins_id: Text,
    pub medins_admdvs: Text,
    pub medins_type: Text,
    pub medins_lv: Text,
    pub adm_date: Text,
    pub dscg_date: Text,
    pub dscg_main_dise_codg: Text,
    pub dscg_main_dise_name: Text,
    pub dr_codg: Text,
    pub adm_dept_codg: Text,
    pub adm_dept_name: Text,
    pub dscg_dept_codg: Text,
    pub med_mdtrt_type: Text,
    pub med_type: Text,
    pub matn_stas: Text,
    #[serde(deserialize_with = "unsigned")]
    pub medfee_sumamt: Option<Amount>,
    pub insutype: Text,
    pub out_setl_flag: Text,
    pub fsi_diagnose_dtos: Vec<DiagnoseDto>,
    pub fsi_order_dtos: Vec<OrderDto>,
    pub fsi_operation_dtos: Vec<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct DiagnoseDto {
    pub dise_id: Text,
    pub inout_dise_type: Text,
    pub maindise_flag: Text,
    pub dias_srt_no: Text,
    pub dise_codg: Text,
    pub dise_name: Text,
    pub dise_date: Text,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct OrderDto {
    pub rx_id: Text,
    pub rxno: Text,
    pub grpno: Text,
    pub long_drord_flag: Text,
    pub hilist_type: Text,
    pub chrg_type: Text,
    pub drord_bhvr: Text,
    pub hilist_code: Text,
    pub hilist_name: Text,
    pub hilist_lv: Text,
    #[serde(deserialize_with = "unsigned")]
    pub hilist_pric: Option<UnitPrice>,
    pub hosplist_code: Text,
    pub hosplist_name: Text,
    #[serde(deserialize_with = "signed")]
    pub cnt: Option<Quantity>,
    #[serde(deserialize_with = "unsigned")]
    pub pric: Option<UnitPrice>,
    #[serde(deserialize_with = "signed")]
    pub sumamt: Option<Amount>,
    pub spec: Text,
    pub drord_begn_date: Text,
    pub drord_stop_date: Text,
    pub drord_dept_codg: Text,
    pub drord_dept_name: Text,
    pub drord_dr_codg: Text,
    pub drord_dr_name: Text,
    pub drord_dr_profttl: Text,
    pub curr_drord_flag: Text,
}

/// 3103 事前事中服务反馈 `data`.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct Feedback {
    pub warn_type: Text,
    pub warns: Vec<Warn>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct Warn {
    pub warn_rslt_id: Text,
    pub dspo_way: Text,
    pub dspo_way_rea: Text,
}
