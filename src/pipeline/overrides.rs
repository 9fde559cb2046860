//! 3103 doctor answers. A 3101/3102 hit gets a `jr_id`; when the doctor answers "1 继续执行" with a
//! reason, the same lines (same item, quantity and amount) pass that rule at 事中 time for that
//! visit. A change to a line voids it. Non-overridable blocks are refused (the HIS is told).
//!
//! The `jr_id`s and the grants are data: with a store (where history lives, SQLite or PostgreSQL:
//! tables `o_jr`, `o_grant`) they survive a restart, every instance sharing the store sees them, and
//! history's retention prunes them. The moka caches in front only save reads: a grant missing from
//! the cache, or one that does not cover a hit, is read again from the store (another instance may
//! have granted it since). Without a store (the CLI, tests) they live in memory.

use crate::claim::Claim;
use crate::rules::{Action, Decision, Outcome};
use crate::store::{Conn, Store, StoreError, P};
use moka::sync::Cache;
use std::sync::Arc;
use std::time::Duration;

/// The overrides' tables, created in the store beside history's.
pub fn create_schema(c: &mut dyn Conn) -> Result<(), StoreError> {
    c.exec(
        "CREATE TABLE IF NOT EXISTS o_jr (jr_id TEXT PRIMARY KEY, rule_id TEXT NOT NULL, mdtrt_id TEXT NOT NULL, \
         lines TEXT NOT NULL, overridable BIGINT NOT NULL, day TEXT NOT NULL)",
        &[],
    )?;
    c.exec(
        "CREATE TABLE IF NOT EXISTS o_grant (mdtrt_id TEXT NOT NULL, rule_id TEXT NOT NULL, line_id TEXT NOT NULL, \
         fp TEXT NOT NULL, jr_id TEXT NOT NULL, reason TEXT NOT NULL, day TEXT NOT NULL, \
         PRIMARY KEY (mdtrt_id, rule_id, line_id, fp))",
        &[],
    )?;
    c.exec("CREATE INDEX IF NOT EXISTS o_jr_day ON o_jr (day)", &[])?;
    c.exec("CREATE INDEX IF NOT EXISTS o_grant_day ON o_grant (day)", &[])?;
    Ok(())
}

/// What a `jr_id` stood for.
#[derive(Debug, Clone)]
pub struct JrRecord {
    pub rule_id: String,
    pub mdtrt_id: String,
    /// `(line id, fingerprint)`.
    pub lines: Vec<(String, u64)>,
    pub overridable: bool,
}

pub struct Overrides {
    jrs: Cache<String, Arc<JrRecord>>,
    /// `mdtrt_id \x1f rule_id` → granted lines.
    granted: Cache<String, Arc<Vec<(String, u64)>>>,
    store: Option<Arc<dyn Store>>,
}

/// A line's identity for override purposes: item, quantity, amount. An order that carries no
/// price (a CDS draft order, a 3101 order with `pric` 0 and no amount) is identified by item and
/// quantity alone: the doctor answered for the item and the quantity, and the fee line that bills
/// it later has the price the order did not.
pub fn fingerprint(claim: &Claim, line_id: &str) -> Option<u64> {
    let l = claim.lines.iter().find(|l| l.id == line_id)?;
    Some(if l.amount.get() == 0 && l.price.micro() == 0 { unpriced(l) } else { priced(l) })
}

fn priced(l: &crate::claim::Line) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    l.code.hash(&mut h);
    l.qty.hash(&mut h);
    l.amount.hash(&mut h);
    h.finish()
}

fn unpriced(l: &crate::claim::Line) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    "unpriced".hash(&mut h);
    l.code.hash(&mut h);
    l.qty.hash(&mut h);
    h.finish()
}

fn key(mdtrt_id: &str, rule_id: &str) -> String {
    format!("{mdtrt_id}\x1f{rule_id}")
}

/// The answer to one `warns[]` entry.
#[derive(Debug, PartialEq, Eq)]
pub enum FeedbackOutcome {
    Granted,
    Modify,
    NotOverridable,
    UnknownJr,
    MissingReason,
}

impl Default for Overrides {
    fn default() -> Self {
        Overrides {
            jrs: Cache::builder().max_capacity(1_000_000).time_to_live(Duration::from_secs(7 * 24 * 3600)).build(),
            granted: Cache::builder().max_capacity(1_000_000).time_to_live(Duration::from_secs(7 * 24 * 3600)).build(),
            store: None,
        }
    }
}

fn lines_text(lines: &[(String, u64)]) -> String {
    lines.iter().map(|(l, fp)| format!("{l}\x1f{fp:x}")).collect::<Vec<_>>().join("\x1e")
}

fn lines_of(text: &str) -> Vec<(String, u64)> {
    text.split('\x1e')
        .filter_map(|e| e.split_once('\x1f'))
        .filter_map(|(l, fp)| u64::from_str_radix(fp, 16).ok().map(|fp| (l.to_owned(), fp)))
        .collect()
}

fn today() -> String {
    chrono::Local::now().date_naive().format("%Y-%m-%d").to_string()
}

impl Overrides {
    /// Overrides kept in `store`, opened with [`create_schema`] among its owner's tables (the engine
    /// creates them once, under its own guard against a second instance doing the same).
    pub fn with_store(store: Arc<dyn Store>) -> Overrides {
        Overrides { store: Some(store), ..Overrides::default() }
    }

    /// Remembers what a `jr_id` stood for. A store that fails is logged: the answer still goes out
    /// and this instance still knows the `jr_id` until it restarts.
    pub fn remember(&self, jr_id: &str, rec: JrRecord) {
        if let Some(store) = &self.store {
            let (lines, day) = (lines_text(&rec.lines), today());
            let r = store.tx(&mut |c| {
                c.exec(
                    "INSERT INTO o_jr (jr_id, rule_id, mdtrt_id, lines, overridable, day) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (jr_id) DO NOTHING",
                    &[
                        P::T(jr_id),
                        P::T(&rec.rule_id),
                        P::T(&rec.mdtrt_id),
                        P::T(&lines),
                        P::I(i64::from(rec.overridable)),
                        P::T(&day),
                    ],
                )
                .map(|_| true)
            });
            if let Err(e) = r {
                tracing::warn!(error = %e, "a 3101/3102 result could not be stored; only this instance knows it");
            }
        }
        self.jrs.insert(jr_id.to_owned(), Arc::new(rec));
    }

    fn jr(&self, jr_id: &str) -> Option<Arc<JrRecord>> {
        if let Some(r) = self.jrs.get(jr_id) {
            return Some(r);
        }
        let store = self.store.as_ref()?;
        let mut row = None;
        let read = store.read(&mut |c| {
            row = c
                .query("SELECT rule_id, mdtrt_id, lines, overridable FROM o_jr WHERE jr_id = $1", &[P::T(jr_id)])?
                .into_iter()
                .next();
            Ok(())
        });
        if let Err(e) = read {
            tracing::warn!(error = %e, "3103: the stored 3101/3102 results could not be read");
        }
        let r = row?;
        let rec = Arc::new(JrRecord {
            rule_id: r[0].string(),
            mdtrt_id: r[1].string(),
            lines: lines_of(r[2].text().unwrap_or_default()),
            overridable: r[3].int() == Some(1),
        });
        self.jrs.insert(jr_id.to_owned(), rec.clone());
        Some(rec)
    }

    /// The lines granted for `rule_id` on visit `mdtrt_id`, read from the store when it has one.
    fn stored_grants(&self, k: &str, mdtrt_id: &str, rule_id: &str) -> Option<Arc<Vec<(String, u64)>>> {
        let store = self.store.as_ref()?;
        let mut rows = Vec::new();
        let read = store.read(&mut |c| {
            rows = c.query(
                "SELECT line_id, fp FROM o_grant WHERE mdtrt_id = $1 AND rule_id = $2",
                &[P::T(mdtrt_id), P::T(rule_id)],
            )?;
            Ok(())
        });
        if let Err(e) = read {
            tracing::warn!(error = %e, "the doctors' stored answers could not be read");
            return None;
        }
        let lines: Vec<(String, u64)> = rows
            .iter()
            .filter_map(|r| u64::from_str_radix(r[1].text()?, 16).ok().map(|fp| (r[0].string(), fp)))
            .collect();
        if lines.is_empty() {
            return None;
        }
        let lines = Arc::new(lines);
        self.granted.insert(k.to_owned(), lines.clone());
        Some(lines)
    }

    /// Drops what is older than `before` (yyyy-MM-dd), with history's retention.
    ///
    /// # Errors
    /// The store failed.
    pub fn prune(&self, before: &str) -> Result<u64, StoreError> {
        let Some(store) = &self.store else { return Ok(0) };
        let mut n = 0;
        store.tx(&mut |c| {
            n = c.exec("DELETE FROM o_jr WHERE day < $1", &[P::T(before)])?;
            n += c.exec("DELETE FROM o_grant WHERE day < $1", &[P::T(before)])?;
            Ok(true)
        })?;
        Ok(n)
    }

    /// Records a doctor's answer (`dspo_way` 1 continue, 2 modify).
    pub fn answer(&self, jr_id: &str, dspo_way: &str, reason: &str) -> FeedbackOutcome {
        let Some(rec) = self.jr(jr_id) else { return FeedbackOutcome::UnknownJr };
        match dspo_way {
            "1" if reason.trim().is_empty() => FeedbackOutcome::MissingReason,
            "1" if !rec.overridable => FeedbackOutcome::NotOverridable,
            "1" => {
                let k = key(&rec.mdtrt_id, &rec.rule_id);
                let mut lines = self.granted.get(&k).map(|a| (*a).clone()).unwrap_or_default();
                for l in &rec.lines {
                    if !lines.contains(l) {
                        lines.push(l.clone());
                    }
                }
                self.granted.insert(k, Arc::new(lines));
                if let Some(store) = &self.store {
                    let day = today();
                    let r = store.tx(&mut |c| {
                        for (l, fp) in &rec.lines {
                            c.exec(
                                "INSERT INTO o_grant (mdtrt_id, rule_id, line_id, fp, jr_id, reason, day) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (mdtrt_id, rule_id, line_id, fp) DO NOTHING",
                                &[
                                    P::T(&rec.mdtrt_id),
                                    P::T(&rec.rule_id),
                                    P::T(l),
                                    P::T(&format!("{fp:x}")),
                                    P::T(jr_id),
                                    P::T(reason.trim()),
                                    P::T(&day),
                                ],
                            )?;
                        }
                        Ok(true)
                    });
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "a doctor's answer could not be stored; only this instance honours it");
                    }
                }
                FeedbackOutcome::Granted
            }
            _ => FeedbackOutcome::Modify,
        }
    }

    /// Removes the hits the doctor answered for, when every line of the hit is unchanged.
    /// Returns the rule ids that were overridden.
    pub fn apply(&self, claim: &Claim, d: &mut Decision) -> Vec<String> {
        let mut removed = Vec::new();
        d.hits.retain(|h| {
            if !(h.overridable || h.action == Action::Remind) || h.lines.is_empty() {
                return true;
            }
            let k = key(&claim.encounter.mdtrt_id, &h.rule_id);
            // A grant matches the line as it is now, priced, or by item and quantity when it was
            // given on an order without a price.
            let covers = |granted: &[(String, u64)]| {
                h.lines.iter().all(|l| {
                    claim.lines.iter().find(|x| x.id == *l).is_some_and(|line| {
                        let (a, b) = (priced(line), unpriced(line));
                        granted.iter().any(|(gl, gfp)| gl == l && (*gfp == a || *gfp == b))
                    })
                })
            };
            // The cache first; the store when the cache does not cover the hit (another instance, or
            // this one before a restart, may have recorded the answer).
            let all = self.granted.get(&k).is_some_and(|g| covers(&g))
                || self.stored_grants(&k, &claim.encounter.mdtrt_id, &h.rule_id).is_some_and(|g| covers(&g));
            if all {
                removed.push(h.rule_id.to_string());
            }
            !all
        });
        if !removed.is_empty() {
            d.decision = d.hits.iter().map(|h| Outcome::from(h.action)).max().unwrap_or(Outcome::Pass);
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::decision::RulesetRef;
    use crate::rules::{Hit, Severity};

    fn store(dir: &std::path::Path) -> Arc<dyn Store> {
        Arc::new(crate::store::sqlite::SqliteStore::open(&dir.join("h.sqlite"), false, 2, create_schema).unwrap())
    }

    fn claim() -> Claim {
        let mut c = Claim::default();
        c.encounter.mdtrt_id = "M1".into();
        let mut l = crate::claim::Line {
            id: "R1".into(),
            code: "XB05BAF162B002010100309".into(),
            his_code: Default::default(),
            name: None,
            category: None,
            class: crate::claim::ItemClass::WesternDrug,
            qty: crate::claim::Qty::whole(2),
            price: crate::claim::Price::from_micro(10_000_000),
            amount: crate::claim::Fen::new(2000),
            time: crate::claim::time::parse_datetime("2025-06-01 09:00:00").unwrap(),
            dept_code: Default::default(),
            dept_name: Default::default(),
            doctor_code: Default::default(),
            doctor_name: Default::default(),
            days_supply: None,
            discharge_drug: false,
            reverses: None,
            trace_codes: Vec::new(),
        };
        c.lines.push(l.clone());
        l.id = "R2".into();
        c.lines.push(l);
        c
    }

    fn remind(rule: &str) -> Decision {
        Decision {
            decision: Outcome::Remind,
            ruleset: RulesetRef { name: "t".into(), version: "1".into() },
            hits: vec![Hit {
                rule_id: rule.into(),
                rule_name: "限适应症".into(),
                action: Action::Remind,
                severity: Severity::Warning,
                message: "提醒".into(),
                lines: vec!["R1".into()],
                line_amounts: vec![crate::claim::Fen::new(2000)],
                amount: crate::claim::Fen::new(2000),
                overridable: true,
                points: 0,
                basis: "".into(),
                evidence: vec![],
            }],
            unchecked: vec![],
            elapsed_us: 0,
        }
    }

    fn jr(c: &Claim, overridable: bool) -> JrRecord {
        JrRecord {
            rule_id: "GZ10000101008000-TX".into(),
            mdtrt_id: "M1".into(),
            lines: vec![("R1".into(), fingerprint(c, "R1").unwrap())],
            overridable,
        }
    }

    #[test]
    fn an_answer_survives_a_restart_and_is_honoured_by_another_instance_on_the_same_store() {
        // Arrange: instance A hands out a jr_id; it restarts (a new Overrides on the same store).
        let dir = tempfile::tempdir().unwrap();
        let c = claim();
        Overrides::with_store(store(dir.path())).remember("JR1", jr(&c, true));
        let restarted = Overrides::with_store(store(dir.path()));
        // Act: the doctor's answer reaches the restarted instance.
        let outcome = restarted.answer("JR1", "1", "患者肝硬化诊断见住院病历");
        // Assert: a third instance sharing the store lets the same line through, and only it.
        assert_eq!(outcome, FeedbackOutcome::Granted);
        let other = Overrides::with_store(store(dir.path()));
        let mut d = remind("GZ10000101008000-TX");
        assert_eq!(other.apply(&c, &mut d), vec!["GZ10000101008000-TX".to_string()]);
        assert_eq!(d.decision, Outcome::Pass);
        let mut changed = c.clone();
        changed.lines[0].qty = crate::claim::Qty::whole(3);
        let mut d = remind("GZ10000101008000-TX");
        assert!(other.apply(&changed, &mut d).is_empty(), "a changed line voids the answer");
    }

    #[test]
    fn an_answer_given_on_an_unpriced_order_covers_the_priced_fee_line_of_the_same_item_and_quantity() {
        // Arrange: the order (a CDS draft order) carries no price; the doctor continues.
        let o = Overrides::default();
        let mut order = claim();
        order.lines[0].price = crate::claim::Price::from_micro(0);
        order.lines[0].amount = crate::claim::Fen::new(0);
        o.remember("JR-U", jr(&order, true));
        assert_eq!(o.answer("JR-U", "1", "病情需要"), FeedbackOutcome::Granted);
        // Act / Assert: the fee line bills it priced; the same item and quantity pass, another quantity does not.
        let billed = claim();
        let mut d = remind("GZ10000101008000-TX");
        assert_eq!(o.apply(&billed, &mut d).len(), 1);
        let mut more = claim();
        more.lines[0].qty = crate::claim::Qty::whole(5);
        let mut d = remind("GZ10000101008000-TX");
        assert!(o.apply(&more, &mut d).is_empty());
    }

    #[test]
    fn an_unknown_jr_id_a_block_and_a_missing_reason_are_refused_and_pruning_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let o = Overrides::with_store(store(dir.path()));
        let c = claim();
        o.remember("JR-BLOCK", jr(&c, false));
        o.remember("JR-OK", jr(&c, true));
        assert_eq!(o.answer("JR-NOPE", "1", "理由"), FeedbackOutcome::UnknownJr);
        assert_eq!(o.answer("JR-BLOCK", "1", "理由"), FeedbackOutcome::NotOverridable);
        assert_eq!(o.answer("JR-OK", "1", "  "), FeedbackOutcome::MissingReason);
        assert_eq!(o.prune("9999-01-01").unwrap(), 2);
        assert_eq!(Overrides::with_store(store(dir.path())).answer("JR-OK", "1", "理由"), FeedbackOutcome::UnknownJr);
    }
}
