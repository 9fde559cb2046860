//! SIGKILL in the middle of a stream of acknowledged claims: after a restart every acknowledged
//! claim is in the history and in the decision journal, and resending the whole stream (the HIS
//! retries what it is unsure of) counts nothing twice.

use crate::helpers::*;
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(port: u16, sim: &str, data: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_claimgate"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--upstream"])
        .arg(format!("{sim}/fsi/api/rsfComIfsService/callService"))
        .arg("--rules")
        .arg(root().join("rulesets/national-baseline"))
        .arg("--data")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn ready(client: &reqwest::Client, base: &str) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(60) {
        if client.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("claimgate did not become ready");
}

#[actix_web::test]
async fn a_killed_process_keeps_every_acknowledged_claim_once_in_history_and_the_journal() {
    let (sim_addr, sim_server) = claimgate::sim::build("127.0.0.1:0").unwrap();
    actix_web::rt::spawn(sim_server);
    let sim = format!("http://{sim_addr}");
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let url = format!("{base}/fsi/api/rsfComIfsService/callService");
    let client = reqwest::Client::new();
    let mut child = start(port, &sim, data.path());
    ready(&client, &base).await;
    let cert = "410702198003150031";
    let r: serde_json::Value = client
        .post(&url)
        .json(&envelope(
            "1101",
            "K1101",
            json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": cert, "certno": cert, "psn_cert_type": "01"}}),
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let psn = r["output"]["baseinfo"]["psn_no"].as_str().unwrap().to_owned();
    let r: serde_json::Value = client.post(&url).json(&envelope("2201", "K2201", json!({"data": {"psn_no": psn, "insutype": "310", "begntime": "2025-06-10 09:00:00", "mdtrt_cert_type": "02", "mdtrt_cert_no": cert, "ipt_otp_no": "MZK", "atddr_no": "D1", "dr_name": "王医生", "dept_code": "100301", "dept_name": "内科", "caty": "A03"}}))).send().await.unwrap().json().await.unwrap();
    let visit = r["output"]["data"]["mdtrt_id"].as_str().unwrap().to_owned();
    const N: usize = 300;
    let msg = |i: usize| {
        let mut l = line(&format!("K{i:04}"), &visit, &psn, "003101000010000", 1, "5.00", "5.00", None);
        l["med_type"] = "11".into();
        envelope("2204", &format!("KMSG{i:04}"), json!({"feedetail": [l]}))
    };
    // Stream; kill -9 once 120 are acknowledged, with requests still in flight. From the 110th on,
    // another connection holds the journal locked for 400 ms (a backup, an office export): the
    // records of what the HIS is told meanwhile cannot be written, and an answer given before its
    // record is durable would be lost by the kill.
    let mut acked = Vec::new();
    let (mut killed, mut locked) = (false, false);
    let journal_file = data.path().join("journal.sqlite");
    for i in 0..N {
        if acked.len() == 110 && !locked {
            let (file, (tx, rx)) = (journal_file.clone(), std::sync::mpsc::channel());
            std::thread::spawn(move || {
                let c = rusqlite::Connection::open(file).unwrap();
                c.execute_batch("BEGIN EXCLUSIVE").unwrap();
                tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(400));
                c.execute_batch("COMMIT").unwrap();
            });
            rx.recv().unwrap();
            locked = true;
        }
        if acked.len() == 120 && !killed {
            let pid = child.id();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(3));
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            });
            killed = true;
        }
        match client.post(&url).json(&msg(i)).send().await {
            Ok(r) => match r.json::<serde_json::Value>().await {
                Ok(v) if v["infcode"] == 0 => acked.push(i),
                _ => break,
            },
            Err(_) => break,
        }
    }
    let _ = child.wait();
    assert!(
        killed && acked.len() >= 120 && acked.len() < N,
        "the kill landed mid-stream ({} acknowledged)",
        acked.len()
    );
    // Before anything is resent: every acknowledged claim survived the kill.
    {
        let db = rusqlite::Connection::open(data.path().join("history.sqlite")).unwrap();
        for i in &acked {
            let n: i64 = db
                .query_row("SELECT COUNT(*) FROM h_line WHERE feedetl_sn = ?1", [format!("K{i:04}")], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 1, "acknowledged claim K{i:04} lost by the kill");
        }
        // …and in the journal, with the gateway's outcome: the HIS was told, the record is durable.
        let journal = rusqlite::Connection::open(data.path().join("journal.sqlite")).unwrap();
        for i in &acked {
            let n: i64 = journal
                .query_row(
                    "SELECT COUNT(*) FROM j_decision WHERE msgid = ?1 AND gateway_infcode = 0",
                    [format!("KMSG{i:04}")],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(n, 1, "acknowledged claim KMSG{i:04} has no journal record after the kill");
        }
    }
    // Restart on the same data; the HIS resends the whole stream.
    let mut child = start(port, &sim, data.path());
    ready(&client, &base).await;
    for i in 0..N {
        let v: serde_json::Value = client.post(&url).json(&msg(i)).send().await.unwrap().json().await.unwrap();
        assert_eq!(v["infcode"], 0, "{v}");
    }
    let _ = child.kill();
    let _ = child.wait();
    let db = rusqlite::Connection::open(data.path().join("history.sqlite")).unwrap();
    let lines: i64 = db.query_row("SELECT COUNT(*) FROM h_line", [], |r| r.get(0)).unwrap();
    let distinct: i64 = db.query_row("SELECT COUNT(DISTINCT feedetl_sn) FROM h_line", [], |r| r.get(0)).unwrap();
    assert_eq!((lines, distinct), (N as i64, N as i64), "every claim once");
    let msgs: i64 = db.query_row("SELECT COUNT(*) FROM h_msg WHERE msgid LIKE 'KMSG%'", [], |r| r.get(0)).unwrap();
    assert_eq!(msgs, N as i64);
}
