//! Transaction numbers (交易编号) and how claimgate treats each.

/// What claimgate does with a transaction, decided by `infno` alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Infno {
    /// 1101 人员信息获取 — relayed; its answer teaches gender, birth date and insutype.
    PersonQuery,
    /// 2201 门诊挂号.
    OutpatientRegister,
    /// 2202 门诊挂号撤销.
    OutpatientRegisterCancel,
    /// 2203 门诊就诊信息上传 (med_type, diagnoses).
    OutpatientVisitInfo,
    /// 2204 门诊费用明细信息上传.
    OutpatientFeeUpload,
    /// 2205 门诊费用明细信息撤销.
    OutpatientFeeRevoke,
    /// 2206 门诊预结算.
    OutpatientPreSettle,
    /// 2207 门诊结算.
    OutpatientSettle,
    /// 2208 门诊结算撤销.
    OutpatientSettleCancel,
    /// 2301 住院费用明细上传.
    InpatientFeeUpload,
    /// 2302 住院费用明细撤销.
    InpatientFeeRevoke,
    /// 2303 住院预结算.
    InpatientPreSettle,
    /// 2304 住院结算.
    InpatientSettle,
    /// 2305 住院结算撤销.
    InpatientSettleCancel,
    /// 2401 入院办理.
    Admission,
    /// 2402 出院办理.
    Discharge,
    /// 2404 入院撤销.
    AdmissionCancel,
    /// 3101 明细审核事前分析服务.
    PreAnalysis,
    /// 3102 明细审核事中分析服务.
    MidAnalysis,
    /// 3103 事前事中服务反馈服务.
    AnalysisFeedback,
    /// 3505 / 3505A 商品销售 (pharmacy, drug trace codes).
    DrugSale,
    /// 3506 商品销售退货: the boxes come back and their trace codes may be sold again.
    DrugSaleReturn,
    /// 9001 签到 and everything else: relayed untouched.
    Other,
}

impl Infno {
    pub fn parse(code: &str) -> Infno {
        match code.trim() {
            "1101" => Infno::PersonQuery,
            "2201" => Infno::OutpatientRegister,
            "2202" => Infno::OutpatientRegisterCancel,
            "2203" | "2203A" => Infno::OutpatientVisitInfo,
            "2204" => Infno::OutpatientFeeUpload,
            "2205" => Infno::OutpatientFeeRevoke,
            "2206" | "2206A" => Infno::OutpatientPreSettle,
            "2207" | "2207A" => Infno::OutpatientSettle,
            "2208" => Infno::OutpatientSettleCancel,
            "2301" => Infno::InpatientFeeUpload,
            "2302" => Infno::InpatientFeeRevoke,
            "2303" => Infno::InpatientPreSettle,
            "2304" => Infno::InpatientSettle,
            "2305" => Infno::InpatientSettleCancel,
            "2401" => Infno::Admission,
            "2402" => Infno::Discharge,
            "2404" => Infno::AdmissionCancel,
            "3101" => Infno::PreAnalysis,
            "3102" => Infno::MidAnalysis,
            "3103" => Infno::AnalysisFeedback,
            "3505" | "3505A" => Infno::DrugSale,
            "3506" => Infno::DrugSaleReturn,
            _ => Infno::Other,
        }
    }

    /// Transactions whose claim is evaluated before it may leave the hospital.
    pub fn is_checked(self) -> bool {
        matches!(
            self,
            Infno::OutpatientFeeUpload
                | Infno::InpatientFeeUpload
                | Infno::OutpatientPreSettle
                | Infno::OutpatientSettle
                | Infno::InpatientPreSettle
                | Infno::InpatientSettle
                | Infno::Admission
                | Infno::DrugSale
        )
    }

    /// Transactions that undo what an earlier one did: 2205/2302 (fee lines revoked), 2208/2305
    /// (a settlement cancelled). Relayed unjudged, but read in full first (they change history).
    pub fn is_reversal(self) -> bool {
        matches!(
            self,
            Infno::OutpatientFeeRevoke
                | Infno::InpatientFeeRevoke
                | Infno::OutpatientSettleCancel
                | Infno::InpatientSettleCancel
        )
    }

    /// 3101/3102/3103 are answered by claimgate itself.
    pub fn is_local_analysis(self) -> bool {
        matches!(self, Infno::PreAnalysis | Infno::MidAnalysis | Infno::AnalysisFeedback)
    }
}
