//! A cached snapshot extended by a write must be exactly what reading the store gives.

use super::*;
use crate::claim::PastLine;
use proptest::prelude::*;
use serde_json::{json, Value};

const DAY0: &str = "2025-06-01";
/// Checks are on 2025-07-10 with a 30-day lookback: lines from before 06-10 fall outside.
const LOOKBACK: u32 = 30;

fn day(offset: u8) -> String {
    let d0 = NaiveDate::parse_from_str(DAY0, "%Y-%m-%d").unwrap_or_default();
    (d0 + Days::new(u64::from(offset))).format("%Y-%m-%d").to_string()
}

fn env(infno: &str, msgid: &str, input: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"infno": infno, "msgid": msgid, "inf_time": "2025-07-10 08:00:00",
        "fixmedins_code": "H41070100001", "input": input}))
    .unwrap_or_default()
}

fn learn(h: &History, req: &[u8], out: Option<Value>) {
    let head = crate::wire::parse_head(req).expect("head");
    let resp: Option<ResponseEnvelope> =
        out.map(|o| serde_json::from_value(json!({"infcode": 0, "err_msg": "", "output": o})).expect("answer"));
    h.learn(&head, resp.as_ref(), None).expect("learn");
}

/// Visits `V0` (outpatient, 2201) and `V1` (inpatient, 2401) of patient `P1`.
fn register(h: &History) {
    learn(
        h,
        &env("2201", "R0", json!({"data": {"psn_no": "P1", "insutype": "310", "begntime": "2025-06-01 08:00:00"}})),
        Some(json!({"data": {"mdtrt_id": "V0"}})),
    );
    learn(
        h,
        &env(
            "2401",
            "R1",
            json!({"mdtrtinfo": {"psn_no": "P1", "insutype": "310", "med_type": "21",
            "begntime": "2025-06-01 08:00:00", "adm_dept_codg": "A03"}, "diseinfo": []}),
        ),
        Some(json!({"result": {"mdtrt_id": "V1"}})),
    );
}

#[derive(Debug, Clone)]
enum Op {
    /// Lines `(feedetl_sn, day offset, second, code, fen)` uploaded to visit 0 or 1.
    Upload(u8, Vec<(u8, u8, u8, u8, u32)>),
    Settle(u8),
    Revoke(u8, Option<u8>),
    Check,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2u8, prop::collection::vec((0..10u8, 0..40u8, 0..3u8, 0..4u8, 1..50_000u32), 1..6))
            .prop_map(|(v, l)| Op::Upload(v, l)),
        1 => (0..2u8).prop_map(Op::Settle),
        1 => (0..2u8, prop::option::of(0..10u8)).prop_map(|(v, sn)| Op::Revoke(v, sn)),
        3 => Just(Op::Check),
    ]
}

const CODES: [&str; 4] = ["003101000010000", "XA01AAA012A001010100001", "002502000010000", "ZA01AAA0123010100001"];

fn apply_op(h: &History, n: usize, op: &Op) {
    let msgid = format!("M{n}");
    match op {
        Op::Upload(v, lines) => {
            let lines: Vec<Value> = lines
                .iter()
                .map(|(sn, d, s, c, fen)| {
                    let amt = format!("{}.{:02}", fen / 100, fen % 100);
                    json!({"feedetl_sn": format!("L{sn}"), "mdtrt_id": format!("V{v}"), "psn_no": "P1",
                        "fee_ocur_time": format!("{} 10:00:0{s}", day(*d)), "med_list_codg": CODES[usize::from(*c)],
                        "det_item_fee_sumamt": amt, "cnt": 1, "pric": amt, "bilg_dept_codg": "A03", "bilg_dr_codg": "D001"})
                })
                .collect();
            let infno = if *v == 0 { "2204" } else { "2301" };
            learn(h, &env(infno, &msgid, json!({"feedetail": lines})), None);
        }
        Op::Settle(v) => {
            let infno = if *v == 0 { "2207" } else { "2304" };
            let out = json!({"setlinfo": {"mdtrt_id": format!("V{v}"), "setl_id": format!("S{n}"), "insutype": "310",
                "hifp_pay": "5.00", "fund_pay_sumamt": "5.00", "medfee_sumamt": "10.00"}});
            learn(
                h,
                &env(infno, &msgid, json!({"data": {"psn_no": "P1", "mdtrt_id": format!("V{v}"), "insutype": "310"}})),
                Some(out),
            );
        }
        Op::Revoke(v, sn) => {
            let infno = if *v == 0 { "2205" } else { "2302" };
            let mut data = json!({"mdtrt_id": format!("V{v}"), "psn_no": "P1"});
            if let Some(sn) = sn {
                data["feedetl_sn"] = json!(format!("L{sn}"));
            }
            learn(h, &env(infno, &msgid, json!({"data": data})), None);
        }
        Op::Check => {}
    }
}

fn checked(h: &History) -> Arc<claim::History> {
    let mut c = Claim { day: NaiveDate::from_ymd_opt(2025, 7, 10), ..Claim::default() };
    c.patient.psn_no = "P1".into();
    h.attach(&mut c, LOOKBACK).expect("attach");
    c.history.expect("history")
}

/// Lines in a total order: the store orders by time and `feedetl_sn` only, and both visits use
/// the same serial numbers.
fn canonical(h: &claim::History) -> (Vec<PastLine>, Vec<claim::PastVisit>, Vec<claim::PastSettlement>) {
    let mut lines: Vec<PastLine> = h.lines.clone();
    lines.sort_by(|a, b| (a.time, &a.id, &a.mdtrt_id).cmp(&(b.time, &b.id, &b.mdtrt_id)));
    let mut visits = h.visits.clone();
    visits.sort_by(|a, b| a.mdtrt_id.cmp(&b.mdtrt_id));
    (lines, visits, h.settlements.clone())
}

fn fresh(h: &History) -> claim::History {
    let since = NaiveDate::from_ymd_opt(2025, 7, 10).unwrap_or_default() - Days::new(u64::from(LOOKBACK));
    db::load(h.store(), &h.psn_key("P1"), since).expect("load").0
}

/// Runs `ops` on `h`; after each, the history a check sees must be what the store holds.
fn check_ops(h: &History, ops: &[Op]) -> Result<(), TestCaseError> {
    register(h);
    for (n, op) in ops.iter().enumerate() {
        apply_op(h, n, op);
        let seen = checked(h);
        prop_assert_eq!(canonical(&seen), canonical(&fresh(h)), "after step {}: {:?}", n, op);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever the sequence of uploads (re-uploads of the same serial numbers, lines before the
    /// lookback), settlements and reversals, the history a check sees is what the store holds.
    #[test]
    fn a_check_sees_what_the_store_holds_after_any_sequence_of_writes(ops in prop::collection::vec(op(), 1..24)) {
        check_ops(&History::ephemeral(None), &ops)?;
    }
}

/// The same on PostgreSQL (a shared store: snapshots are revalidated by version, and extended
/// by it too), fewer cases for the round trips. Each case gets a fresh schema.
#[test]
fn on_postgres_a_check_sees_what_the_store_holds_after_any_sequence_of_writes() {
    if crate::store::testing::pg_store("snapshot_probe", super::db::create_schema).is_none() {
        return;
    }
    let case = std::sync::atomic::AtomicU32::new(0);
    let config = ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() };
    proptest::test_runner::TestRunner::new(config)
        .run(&prop::collection::vec(op(), 1..16), |ops| {
            // The PostgreSQL client must not run on an async executor; a test thread has none.
            let n = case.fetch_add(1, Ordering::Relaxed);
            let store = crate::store::testing::pg_store(&format!("snapshot_{n}"), super::db::create_schema)
                .expect("PostgreSQL");
            check_ops(&History::new(store, None, 1000).expect("history"), &ops)
        })
        .expect("property");
}

#[test]
fn an_upload_extends_the_cached_snapshot_instead_of_dropping_it() {
    let h = History::ephemeral(None);
    register(&h);
    apply_op(&h, 0, &Op::Upload(1, vec![(1, 35, 0, 0, 1200)]));
    let first = checked(&h);
    assert_eq!(first.lines.len(), 1);
    apply_op(&h, 1, &Op::Upload(1, vec![(2, 36, 0, 1, 800), (1, 36, 1, 0, 1500)]));
    // Cached, current, and holding both uploads: the write extended it.
    let key = h.psn_key("P1");
    let snap = h.snapshots.get(&key).expect("still cached");
    assert_eq!(snap.local, h.generation.get(&key).unwrap_or(0));
    assert_eq!(snap.version, db::version(h.store(), &key).expect("version"));
    let seen = checked(&h);
    assert!(Arc::ptr_eq(&seen, &snap.history), "the check used the extended snapshot");
    assert_eq!(canonical(&seen), canonical(&fresh(&h)));
    let order: Vec<(&str, &str)> = seen.lines.iter().map(|l| (l.id.as_str(), &*l.code)).collect();
    assert_eq!(order, vec![("L2", CODES[1]), ("L1", CODES[0])], "L1 re-uploaded in place, in time order");
    // The line kept from the first snapshot is shared, not copied.
    apply_op(&h, 2, &Op::Upload(1, vec![(3, 37, 0, 2, 100)]));
    let after = checked(&h);
    assert!(Arc::ptr_eq(&after.lines[0].code, &seen.lines[0].code));
    // A settlement is not derived: the snapshot is dropped and read again.
    apply_op(&h, 3, &Op::Settle(1));
    assert!(h.snapshots.get(&key).is_none());
    assert!(checked(&h).lines.iter().all(|l| l.settled));
}
