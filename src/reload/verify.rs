//! Reading and verifying a bundle, all in memory and all bounded: the compressed size, the
//! decompressed size (counted while gunzipping, so a gzip bomb stops at the limit rather than
//! after it has filled memory), each file's size and the number of entries. Then the signature over
//! the manifest, then every file against its digest, nothing extra and nothing missing.
//!
//! Nothing here compiles or activates; see `activate.rs`.

use super::bundle::{self, BundleManifest, Signatures, MANIFEST, PACK_PREFIX, SIGNATURES};
use super::error::BundleError;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chrono::NaiveDate;
use ed25519_dalek::{Signature, VerifyingKey};
use std::collections::BTreeMap;
use std::io::Read;

/// Size limits (OPA's `DefaultSizeLimitBytes` "to protect against gzip bombs", per file and total).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The bundle file as received (compressed).
    pub max_bundle_bytes: u64,
    /// Everything gunzip produces (tar headers included).
    pub max_unpacked_bytes: u64,
    /// One file.
    pub max_file_bytes: u64,
    /// Entries in the archive.
    pub max_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bundle_bytes: 64 << 20,
            max_unpacked_bytes: 256 << 20,
            max_file_bytes: crate::rules::pack::MAX_FILE_BYTES,
            max_entries: 10_000,
        }
    }
}

/// A bundle whose signature, digests and shape have been checked.
#[derive(Debug, Clone)]
pub struct Verified {
    pub manifest: BundleManifest,
    /// SHA-256 of the signed `manifest.json` bytes: names the bundle's content.
    pub digest: String,
    /// The trusted key that signed it.
    pub key_id: String,
    /// Pack-relative path → bytes.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Counts what gunzip produces and fails the read past the limit.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Ask for one byte more than allowed so that reaching the limit exactly is not an error.
        let want = buf.len().min(usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(BOMB));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

const BOMB: &str = "decompressed size limit reached";

/// A safe relative path: `/`-separated normal components only.
fn safe_path(raw: &[u8]) -> Result<String, BundleError> {
    let s = std::str::from_utf8(raw).map_err(|_| BundleError::UnsafePath(String::from_utf8_lossy(raw).into_owned()))?;
    let s = s.strip_prefix("./").unwrap_or(s);
    let bad = s.is_empty()
        || s.starts_with('/')
        || s.contains('\\')
        || s.contains('\0')
        || s.split('/').any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(BundleError::UnsafePath(s.to_owned()));
    }
    Ok(s.to_owned())
}

/// Reads every entry of the archive into memory within `limits`.
///
/// # Errors
/// Not an archive, a limit exceeded, an unsafe or unexpected entry.
fn read_entries(bytes: &[u8], limits: &Limits) -> Result<BTreeMap<String, Vec<u8>>, BundleError> {
    if bytes.len() as u64 > limits.max_bundle_bytes {
        return Err(BundleError::TooLarge { what: "the bundle file".into(), limit: limits.max_bundle_bytes });
    }
    let too_big = || BundleError::TooLarge { what: "the decompressed bundle".into(), limit: limits.max_unpacked_bytes };
    let map_io = |e: std::io::Error| {
        if e.to_string().contains(BOMB) {
            too_big()
        } else {
            BundleError::Archive(e.to_string())
        }
    };
    let gz = flate2::read::GzDecoder::new(bytes);
    let mut ar = tar::Archive::new(Capped { inner: gz, left: limits.max_unpacked_bytes });
    let mut out = BTreeMap::new();
    let mut count = 0usize;
    for entry in ar.entries().map_err(map_io)? {
        let mut entry = entry.map_err(map_io)?;
        count += 1;
        if count > limits.max_entries {
            return Err(BundleError::TooLarge {
                what: "the number of entries".into(),
                limit: limits.max_entries as u64,
            });
        }
        let path = safe_path(&entry.path_bytes())?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(BundleError::NotAFile { path, kind: format!("{kind:?}").to_lowercase() });
        }
        let allowed =
            path == MANIFEST || path == SIGNATURES || path.strip_prefix(PACK_PREFIX).is_some_and(bundle::is_pack_file);
        if !allowed {
            return Err(BundleError::Unexpected(path));
        }
        let size = entry.header().size().map_err(|e| BundleError::Archive(e.to_string()))?;
        if size > limits.max_file_bytes {
            return Err(BundleError::TooLarge { what: path, limit: limits.max_file_bytes });
        }
        let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        (&mut entry).take(limits.max_file_bytes + 1).read_to_end(&mut buf).map_err(map_io)?;
        if buf.len() as u64 > limits.max_file_bytes {
            return Err(BundleError::TooLarge { what: path, limit: limits.max_file_bytes });
        }
        if out.insert(path.clone(), buf).is_some() {
            return Err(BundleError::Duplicate(path));
        }
    }
    Ok(out)
}

/// Checks the signatures: at least one by a trusted key. Returns that key's id.
fn check_signature(manifest: &[u8], sigs: Option<&Vec<u8>>, trusted: &[VerifyingKey]) -> Result<String, BundleError> {
    let Some(sigs) = sigs else { return Err(BundleError::Unsigned) };
    let sigs: Signatures =
        serde_json::from_slice(sigs).map_err(|e| BundleError::Malformed { file: SIGNATURES, reason: e.to_string() })?;
    if sigs.signatures.is_empty() {
        return Err(BundleError::Unsigned);
    }
    for s in &sigs.signatures {
        if s.alg != "ed25519" {
            continue;
        }
        let Ok(raw) = B64.decode(s.sig.trim()) else { continue };
        let Ok(sig) = Signature::from_slice(&raw) else { continue };
        if let Some(k) = trusted.iter().find(|k| k.verify_strict(manifest, &sig).is_ok()) {
            return Ok(bundle::key_id(k));
        }
    }
    let ids: Vec<&str> = sigs.signatures.iter().map(|s| s.key_id.as_str()).collect();
    Err(BundleError::Untrusted(ids.join(", ")))
}

fn parse_day(field: &str, v: &Option<String>) -> Result<Option<NaiveDate>, BundleError> {
    v.as_deref()
        .map(|s| {
            NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| BundleError::Malformed {
                file: MANIFEST,
                reason: format!("{field}: not a yyyy-MM-dd date: {s:?}"),
            })
        })
        .transpose()
}

/// Verifies a bundle against the trusted keys, the limits and `today` (the effective dates).
///
/// # Errors
/// The first reason the bundle cannot be trusted.
pub fn verify(
    bytes: &[u8],
    trusted: &[VerifyingKey],
    limits: &Limits,
    today: NaiveDate,
) -> Result<Verified, BundleError> {
    let mut entries = read_entries(bytes, limits)?;
    let manifest_bytes = entries.remove(MANIFEST).ok_or(BundleError::NoManifest)?;
    let key_id = check_signature(&manifest_bytes, entries.get(SIGNATURES), trusted)?;
    entries.remove(SIGNATURES);
    let manifest: BundleManifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| BundleError::Malformed { file: MANIFEST, reason: e.to_string() })?;
    if manifest.format != bundle::FORMAT {
        return Err(BundleError::Malformed {
            file: MANIFEST,
            reason: format!("format {} (this build reads {})", manifest.format, bundle::FORMAT),
        });
    }
    let mut files = BTreeMap::new();
    for (path, bytes) in entries {
        // read_entries let only pack/ files through besides the two above.
        let rel = path.strip_prefix(PACK_PREFIX).unwrap_or(&path).to_owned();
        let Some(want) = manifest.files.get(&rel) else { return Err(BundleError::Extra(rel)) };
        if want.size != bytes.len() as u64 || !want.sha256.eq_ignore_ascii_case(&bundle::sha256_hex(&bytes)) {
            return Err(BundleError::Digest(rel));
        }
        files.insert(rel, bytes);
    }
    if let Some(missing) = manifest.files.keys().find(|p| !files.contains_key(*p)) {
        return Err(BundleError::Missing(missing.clone()));
    }
    // The pack's own manifest must name the same pack as the signed manifest.
    let pm: crate::rules::source::Manifest =
        files.get("manifest.yaml").ok_or_else(|| BundleError::Missing("manifest.yaml".into())).and_then(|b| {
            serde_norway::from_slice(b)
                .map_err(|e| BundleError::Malformed { file: "pack/manifest.yaml", reason: e.to_string() })
        })?;
    if pm.name != manifest.name || pm.version != manifest.version {
        return Err(BundleError::Malformed {
            file: MANIFEST,
            reason: format!(
                "names {}@{} but the pack's manifest.yaml says {}@{}",
                manifest.name, manifest.version, pm.name, pm.version
            ),
        });
    }
    if chrono::DateTime::parse_from_rfc3339(manifest.created_at.trim()).is_err() {
        return Err(BundleError::Malformed {
            file: MANIFEST,
            reason: format!("created_at: not RFC 3339: {:?}", manifest.created_at),
        });
    }
    let from = parse_day("effective_from", &manifest.effective_from)?;
    let until = parse_day("effective_until", &manifest.effective_until)?;
    if let Some(f) = from.filter(|f| today < *f) {
        return Err(BundleError::Dates(format!("not effective before {f} (today is {today})")));
    }
    if let Some(u) = until.filter(|u| today > *u) {
        return Err(BundleError::Dates(format!("expired on {u} (today is {today})")));
    }
    Ok(Verified { digest: bundle::sha256_hex(&manifest_bytes), manifest, key_id, files })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reload::bundle::{manifest_for, sign, write_archive};
    use ed25519_dalek::SigningKey;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap_or_default()
    }

    fn files() -> Vec<(String, Vec<u8>)> {
        vec![
            ("manifest.yaml".into(), b"name: t\nversion: '1'\n".to_vec()),
            ("rules/a.yaml".into(), b"rules: []\n".to_vec()),
        ]
    }

    /// A bundle of `signed` files signed by `k`, whose archive holds `shipped` files.
    fn bundle_of(k: &SigningKey, signed: &[(String, Vec<u8>)], shipped: &[(String, Vec<u8>)]) -> Vec<u8> {
        let m = manifest_for("t", "1", "2026-11-23T00:00:00Z", (None, None), signed);
        let mb = serde_json::to_vec(&m).unwrap_or_default();
        let sb = serde_json::to_vec(&sign(&mb, std::slice::from_ref(k))).unwrap_or_default();
        write_archive(&mb, Some(&sb), shipped).unwrap_or_default()
    }

    #[test]
    fn accepts_a_bundle_signed_by_a_trusted_key() {
        // Arrange
        let k = key(1);
        let b = bundle_of(&k, &files(), &files());
        // Act
        let v = verify(&b, &[key(9).verifying_key(), k.verifying_key()], &Limits::default(), today()).unwrap();
        // Assert
        assert_eq!(v.key_id, bundle::key_id(&k.verifying_key()));
        assert_eq!(v.files.len(), 2);
        assert_eq!(v.manifest.name, "t");
    }

    #[test]
    fn refuses_unsigned_untrusted_changed_extra_and_missing() {
        let k = key(1);
        let trusted = [k.verifying_key()];
        let l = Limits::default();
        let m = manifest_for("t", "1", "2026-11-23T00:00:00Z", (None, None), &files());
        let mb = serde_json::to_vec(&m).unwrap_or_default();
        let unsigned = write_archive(&mb, None, &files()).unwrap_or_default();
        assert_eq!(verify(&unsigned, &trusted, &l, today()).unwrap_err(), BundleError::Unsigned);

        let other = bundle_of(&key(2), &files(), &files());
        assert!(matches!(verify(&other, &trusted, &l, today()), Err(BundleError::Untrusted(_))));

        let mut changed = files();
        changed[1].1 = b"rules: [] # edited\n".to_vec();
        let b = bundle_of(&k, &files(), &changed);
        assert_eq!(verify(&b, &trusted, &l, today()).unwrap_err(), BundleError::Digest("rules/a.yaml".into()));

        let mut extra = files();
        extra.push(("rules/b.yaml".into(), b"rules: []\n".to_vec()));
        let b = bundle_of(&k, &files(), &extra);
        assert_eq!(verify(&b, &trusted, &l, today()).unwrap_err(), BundleError::Extra("rules/b.yaml".into()));

        let b = bundle_of(&k, &extra, &files());
        assert_eq!(verify(&b, &trusted, &l, today()).unwrap_err(), BundleError::Missing("rules/b.yaml".into()));
    }

    #[test]
    fn refuses_a_gzip_bomb_while_streaming() {
        // Arrange: 16 MiB of zeros compresses to about 16 KiB.
        let k = key(1);
        let mut f = files();
        f.push(("tables/zeros.csv".into(), vec![0u8; 16 << 20]));
        let b = bundle_of(&k, &f, &f);
        let l = Limits { max_unpacked_bytes: 1 << 20, max_file_bytes: 32 << 20, ..Limits::default() };
        // Act
        let e = verify(&b, &[k.verifying_key()], &l, today()).unwrap_err();
        // Assert
        assert!(b.len() < 1 << 20, "the bomb is small: {}", b.len());
        assert!(matches!(e, BundleError::TooLarge { ref what, .. } if what == "the decompressed bundle"), "{e}");
        let l = Limits { max_file_bytes: 1 << 20, ..Limits::default() };
        let e = verify(&b, &[k.verifying_key()], &l, today()).unwrap_err();
        assert!(matches!(e, BundleError::TooLarge { ref what, .. } if what == "pack/tables/zeros.csv"), "{e}");
    }

    #[test]
    fn refuses_traversal_links_and_unexpected_entries() {
        assert!(matches!(safe_path(b"../etc/passwd"), Err(BundleError::UnsafePath(_))));
        assert!(matches!(safe_path(b"/etc/passwd"), Err(BundleError::UnsafePath(_))));
        assert!(matches!(safe_path(b"pack/rules/../../x"), Err(BundleError::UnsafePath(_))));
        assert!(matches!(safe_path(&[0xff, b'a']), Err(BundleError::UnsafePath(_))));
        assert_eq!(safe_path(b"./pack/manifest.yaml").ok().as_deref(), Some("pack/manifest.yaml"));

        // A symlink entry.
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        tar.append_link(&mut h, "pack/rules/a.yaml", "/etc/passwd").unwrap();
        let b = tar.into_inner().and_then(|g| g.finish()).unwrap_or_default();
        let e = verify(&b, &[key(1).verifying_key()], &Limits::default(), today()).unwrap_err();
        assert!(matches!(e, BundleError::NotAFile { .. }), "{e}");

        let mut f = files();
        f.push(("README.md".into(), b"hi".to_vec()));
        let b = bundle_of(&key(1), &f, &f);
        let e = verify(&b, &[key(1).verifying_key()], &Limits::default(), today()).unwrap_err();
        assert_eq!(e, BundleError::Unexpected("pack/README.md".into()));

        assert!(matches!(verify(b"not gzip", &[], &Limits::default(), today()), Err(BundleError::Archive(_))));
    }

    #[test]
    fn refuses_a_bundle_outside_its_effective_dates() {
        let k = key(1);
        let m = manifest_for("t", "1", "2026-11-23T00:00:00Z", (Some("2027-01-01".into()), None), &files());
        let mb = serde_json::to_vec(&m).unwrap_or_default();
        let sb = serde_json::to_vec(&sign(&mb, std::slice::from_ref(&k))).unwrap_or_default();
        let b = write_archive(&mb, Some(&sb), &files()).unwrap_or_default();
        let e = verify(&b, &[k.verifying_key()], &Limits::default(), today()).unwrap_err();
        assert!(e.to_string().contains("not effective before 2027-01-01"), "{e}");
    }
}
