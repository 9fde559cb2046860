//! The parts of a normalised claim: patient, encounter, lines, and the codes they carry.

use super::money::{Fen, Price, Qty};
use chrono::{NaiveDate, NaiveDateTime};
pub use smol_str::SmolStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gender {
    Male,
    Female,
}

impl Gender {
    /// `gend` code table: 1 男, 2 女; 0 未知 and 9 未说明 are not a known gender.
    pub fn from_code(code: &str) -> Option<Gender> {
        match code.trim() {
            "1" | "男" | "M" | "m" => Some(Gender::Male),
            "2" | "女" | "F" | "f" => Some(Gender::Female),
            _ => None,
        }
    }
    pub fn text(self) -> &'static str {
        match self {
            Gender::Male => "男",
            Gender::Female => "女",
        }
    }
}

/// 门诊 / 住院 / 药店购药.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Visit {
    Outpatient,
    Inpatient,
    Pharmacy,
}

impl Visit {
    pub fn text(self) -> &'static str {
        match self {
            Visit::Outpatient => "门诊",
            Visit::Inpatient => "住院",
            Visit::Pharmacy => "药店购药",
        }
    }
    /// From `med_type`: 1x/5x(51)/8x → 门诊, 2x/52 → 住院, 41 → 药店. Province sub-codes keep the
    /// national first two digits (140104 → 14).
    pub fn from_med_type(mt: &str) -> Option<Visit> {
        let b = mt.as_bytes();
        if b.len() < 2 {
            return None;
        }
        match (b[0], b[1]) {
            (b'1', _) | (b'8', _) | (b'5', b'1') => Some(Visit::Outpatient),
            (b'2', _) | (b'5', b'2') => Some(Visit::Inpatient),
            (b'4', b'1') => Some(Visit::Pharmacy),
            _ => None,
        }
    }
}

/// The kind of catalogue item, from the shape of its national code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemClass {
    /// 西药, `X` + 22.
    WesternDrug,
    /// 中成药, `Z` + 22.
    PatentDrug,
    /// 中药饮片 (`T`-prefixed provincial codes; the national format is unconfirmed).
    Herbal,
    /// 医疗服务项目, 15 digits (+ optional local suffix).
    Service,
    /// 医用耗材, `C` + digits.
    Material,
    Other,
}

impl ItemClass {
    pub fn of_code(code: &str) -> ItemClass {
        let b = code.as_bytes();
        match b.first() {
            Some(b'X') if b.len() >= 10 => ItemClass::WesternDrug,
            Some(b'Z') if b.len() >= 10 => ItemClass::PatentDrug,
            Some(b'T') if b.len() >= 10 => ItemClass::Herbal,
            Some(b'C') if b.len() >= 10 && b[1..10].iter().all(u8::is_ascii_digit) => ItemClass::Material,
            Some(b'0'..=b'9') if b.len() >= 15 && b[..15].iter().all(u8::is_ascii_digit) => ItemClass::Service,
            _ => ItemClass::Other,
        }
    }
    pub fn is_drug(self) -> bool {
        matches!(self, ItemClass::WesternDrug | ItemClass::PatentDrug | ItemClass::Herbal)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// ICD-10 (医保版) code, e.g. `M10.900`.
    pub code: String,
    pub name: String,
    pub main: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Patient {
    /// 人员编号. Personal data: never logged in clear.
    pub psn_no: String,
    pub gender: Option<Gender>,
    pub birth: Option<NaiveDate>,
    pub insutype: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Encounter {
    pub mdtrt_id: String,
    pub visit: Option<Visit>,
    pub med_type: Option<String>,
    pub admitted: Option<NaiveDateTime>,
    pub discharged: Option<NaiveDateTime>,
    /// `None`: nobody told claimgate the diagnoses; `Some(vec![])`: told there are none.
    pub diagnoses: Option<Vec<Diagnosis>>,
    pub dept_code: Option<String>,
    /// The department's name where the message carries one (2401 `adm_dept_name`, 3101/3102).
    pub dept_name: Option<String>,
    /// The attending doctor where the message names one (2401 `atddr_no`, 3101/3102 `dr_codg`).
    pub doctor_code: Option<String>,
    /// The attending doctor's name (2401 `chfpdr_name`).
    pub doctor_name: Option<String>,
    /// 科别 (national department category) from 2201 `caty`.
    pub caty: Option<String>,
    /// Institution tier: 3 三级, 2 二级, 1 一级.
    pub tier: Option<u8>,
}

impl Encounter {
    pub fn main_diagnosis(&self) -> Option<&Diagnosis> {
        let d = self.diagnoses.as_ref()?;
        d.iter().find(|d| d.main).or_else(|| d.first())
    }
}

/// One fee line or order. Its text fields are [`SmolStr`]: codes, ids, flags and short names are
/// held inline (no allocation per field when a 1,000-line stay is parsed), and a hit copies a line
/// id without allocating.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// `feedetl_sn` (2204/2301) or `rx_id` (3101): the line's id in hits.
    pub id: SmolStr,
    /// National code `med_list_codg` / `hilist_code`.
    pub code: SmolStr,
    /// HIS code `medins_list_codg` / `hosplist_code`.
    pub his_code: SmolStr,
    /// Item name where the message carries one (3101 `hilist_name`).
    pub name: Option<SmolStr>,
    /// `med_chrgitm_type` where the message carries it (3101 `chrg_type`).
    pub category: Option<SmolStr>,
    pub class: ItemClass,
    pub qty: Qty,
    pub price: Price,
    pub amount: Fen,
    /// Service time: `fee_ocur_time` or `drord_begn_date`. Rules use this, never the wall clock.
    pub time: NaiveDateTime,
    pub dept_code: SmolStr,
    pub dept_name: SmolStr,
    pub doctor_code: SmolStr,
    pub doctor_name: SmolStr,
    /// Days of medicine supplied (`prd_days`, or the order's stop − start).
    pub days_supply: Option<Qty>,
    /// 出院带药.
    pub discharge_drug: bool,
    /// 退费: the `feedetl_sn` this negative line reverses.
    pub reverses: Option<SmolStr>,
    /// 药品追溯码 of the boxes this line dispenses (`drug_trac_codg`, `drugtracinfo[]`, or the
    /// settlement's `drug_trac_info[]`).
    pub trace_codes: Vec<SmolStr>,
}

impl Line {
    pub fn date(&self) -> NaiveDate {
        self.time.date()
    }
    pub fn is_refund(&self) -> bool {
        self.qty.units() < 0 || self.reverses.is_some()
    }
}
