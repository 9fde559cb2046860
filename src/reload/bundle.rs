//! The bundle file: a gzip'd tar holding `manifest.json` (what the pack is and the SHA-256 of every
//! file), `signatures.json` (ed25519 signatures over the exact bytes of `manifest.json`) and the pack
//! folder under `pack/`. Also the key files and the `claimgate rules bundle` builder.
//!
//! Signing the manifest rather than the archive (as OPA signs its `.signatures.json` claims) keeps the
//! signature independent of tar and gzip details: two archives of the same files verify the same.

use super::error::BundleError;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Entry names inside the archive.
pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURES: &str = "signatures.json";
pub const PACK_PREFIX: &str = "pack/";
/// The bundle format this build writes and reads.
pub const FORMAT: u32 = 1;

const PUBLIC_PREFIX: &str = "ed25519-public:";
const SECRET_PREFIX: &str = "ed25519-secret:";

/// What a bundle holds, signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleManifest {
    pub format: u32,
    /// The pack's name (equal to `name` in its `manifest.yaml`).
    pub name: String,
    /// The pack's revision (equal to `version` in its `manifest.yaml`).
    pub version: String,
    /// RFC 3339, when the bundle was made.
    pub created_at: String,
    /// `yyyy-MM-dd`: the bundle is refused before this day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_from: Option<String>,
    /// `yyyy-MM-dd` inclusive: the bundle is refused after this day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_until: Option<String>,
    /// Pack-relative path → digest and size; exactly the files under `pack/`.
    pub files: BTreeMap<String, FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Lowercase hex SHA-256 of the file's bytes.
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signatures {
    pub signatures: Vec<Signature>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// [`key_id`] of the signing key (a hint; every trusted key is tried).
    pub key_id: String,
    /// Always `ed25519`.
    pub alg: String,
    /// Base64 of the 64-byte signature over the bytes of `manifest.json`.
    pub sig: String,
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A short, stable name for a public key: the first 8 bytes of its SHA-256, in hex.
pub fn key_id(key: &VerifyingKey) -> String {
    sha256_hex(key.as_bytes())[..16].to_owned()
}

// === keys ===

/// A fresh key pair as the text of the private and the public key file.
///
/// # Errors
/// The operating system's random source fails.
pub fn generate_keypair() -> Result<(String, String), BundleError> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| BundleError::Key(format!("random source: {e}")))?;
    let sk = SigningKey::from_bytes(&seed);
    Ok((
        format!("{SECRET_PREFIX}{}\n", B64.encode(sk.to_bytes())),
        format!("{}\n", public_key_text(&sk.verifying_key())),
    ))
}

fn decode_key(text: &str, prefix: &str, what: &str) -> Result<[u8; 32], BundleError> {
    let t = text.trim();
    let b64 =
        t.strip_prefix(prefix).ok_or_else(|| BundleError::Key(format!("{what}: does not start with {prefix}")))?;
    let raw = B64.decode(b64.trim()).map_err(|e| BundleError::Key(format!("{what}: bad base64: {e}")))?;
    raw.try_into().map_err(|_| BundleError::Key(format!("{what}: not 32 bytes")))
}

/// The text of a public key file (also accepted inline in `bundles.trusted_keys`).
pub fn public_key_text(key: &VerifyingKey) -> String {
    format!("{PUBLIC_PREFIX}{}", B64.encode(key.as_bytes()))
}

/// Parses the text of a private key file.
///
/// # Errors
/// Not a key file of ours.
pub fn parse_secret(text: &str) -> Result<SigningKey, BundleError> {
    Ok(SigningKey::from_bytes(&decode_key(text, SECRET_PREFIX, "private key")?))
}

/// Parses the text of a public key file (or the same text given inline in the configuration).
///
/// # Errors
/// Not a public key of ours, or not a valid ed25519 point.
pub fn parse_public(text: &str) -> Result<VerifyingKey, BundleError> {
    let raw = decode_key(text, PUBLIC_PREFIX, "public key")?;
    VerifyingKey::from_bytes(&raw).map_err(|e| BundleError::Key(format!("public key: {e}")))
}

/// A trusted key from the configuration: inline (`ed25519-public:…`) or the path of a key file.
///
/// # Errors
/// The file cannot be read or does not hold a public key.
pub fn load_public(spec: &str) -> Result<VerifyingKey, BundleError> {
    if spec.trim().starts_with(PUBLIC_PREFIX) {
        return parse_public(spec);
    }
    let text = std::fs::read_to_string(spec).map_err(|e| BundleError::Key(format!("{spec}: {e}")))?;
    parse_public(&text).map_err(|e| BundleError::Key(format!("{spec}: {e}")))
}

/// Reads a private key file.
///
/// # Errors
/// The file cannot be read or does not hold a private key.
pub fn load_secret(path: &Path) -> Result<SigningKey, BundleError> {
    let text = std::fs::read_to_string(path).map_err(|e| BundleError::Key(format!("{}: {e}", path.display())))?;
    parse_secret(&text).map_err(|e| BundleError::Key(format!("{}: {e}", path.display())))
}

/// `claimgate keygen`: writes `PREFIX.key` (private, mode 0600 on Unix) and `PREFIX.pub`.
/// Existing files are never overwritten.
///
/// # Errors
/// A file exists or cannot be written.
pub fn keygen_files(prefix: &Path) -> Result<(PathBuf, PathBuf), BundleError> {
    let (secret, public) = generate_keypair()?;
    let key_path = PathBuf::from(format!("{}.key", prefix.display()));
    let pub_path = PathBuf::from(format!("{}.pub", prefix.display()));
    for p in [&key_path, &pub_path] {
        if p.exists() {
            return Err(BundleError::Key(format!("{}: already exists; not overwritten", p.display())));
        }
    }
    let io = |p: &Path, e: std::io::Error| BundleError::Key(format!("{}: {e}", p.display()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    let mut f = opts.open(&key_path).map_err(|e| io(&key_path, e))?;
    f.write_all(secret.as_bytes()).map_err(|e| io(&key_path, e))?;
    std::fs::write(&pub_path, public).map_err(|e| io(&pub_path, e))?;
    Ok((key_path, pub_path))
}

// === writing ===

/// Signs the exact bytes of a manifest with every key.
pub fn sign(manifest_bytes: &[u8], keys: &[SigningKey]) -> Signatures {
    Signatures {
        signatures: keys
            .iter()
            .map(|k| Signature {
                key_id: key_id(&k.verifying_key()),
                alg: "ed25519".into(),
                sig: B64.encode(k.sign(manifest_bytes).to_bytes()),
            })
            .collect(),
    }
}

/// The manifest listing `files` (pack-relative path, bytes).
pub fn manifest_for(
    name: &str,
    version: &str,
    created_at: &str,
    effective: (Option<String>, Option<String>),
    files: &[(String, Vec<u8>)],
) -> BundleManifest {
    BundleManifest {
        format: FORMAT,
        name: name.to_owned(),
        version: version.to_owned(),
        created_at: created_at.to_owned(),
        effective_from: effective.0,
        effective_until: effective.1,
        files: files
            .iter()
            .map(|(p, b)| (p.clone(), FileEntry { sha256: sha256_hex(b), size: b.len() as u64 }))
            .collect(),
    }
}

/// Writes the archive: `manifest.json`, `signatures.json` (when given), then `pack/<path>` for each
/// file. Headers are deterministic (mtime 0, mode 0644), so the same input gives the same bytes.
/// Public so tests can build bundles that are wrong on purpose.
///
/// # Errors
/// Only an entry name that tar cannot hold.
pub fn write_archive(
    manifest_bytes: &[u8],
    signatures: Option<&[u8]>,
    files: &[(String, Vec<u8>)],
) -> Result<Vec<u8>, BundleError> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut add = |name: &str, bytes: &[u8]| -> Result<(), BundleError> {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, name, bytes).map_err(|e| BundleError::Archive(format!("{name}: {e}")))
    };
    add(MANIFEST, manifest_bytes)?;
    if let Some(s) = signatures {
        add(SIGNATURES, s)?;
    }
    for (p, b) in files {
        add(&format!("{PACK_PREFIX}{p}"), b)?;
    }
    let gz = tar.into_inner().map_err(|e| BundleError::Archive(e.to_string()))?;
    gz.finish().map_err(|e| BundleError::Archive(e.to_string()))
}

/// Is `rel` (pack-relative, `/`-separated) a file the pack loader reads? Bundles hold exactly these.
pub fn is_pack_file(rel: &str) -> bool {
    let ok_name = |n: &str, exts: &[&str]| {
        !n.is_empty()
            && !n.starts_with('.')
            && n.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && n.rsplit_once('.').is_some_and(|(stem, ext)| !stem.is_empty() && exts.contains(&ext))
    };
    match rel.split_once('/') {
        None => rel == "manifest.yaml",
        Some(("rules" | "tests", n)) => ok_name(n, &["yaml", "yml"]),
        Some(("tables", n)) => ok_name(n, &["csv"]),
        Some(_) => false,
    }
}

/// A pack's files in a fixed order: `manifest.yaml`, then what `rules/`, `tables/` and `tests/`
/// hold, each sorted by name (what a bundle packs and what the local digest hashes).
pub fn pack_paths(dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![dir.join("manifest.yaml")];
    for sub in ["rules", "tables", "tests"] {
        let mut v: Vec<PathBuf> =
            std::fs::read_dir(dir.join(sub)).into_iter().flatten().flatten().map(|e| e.path()).collect();
        v.sort();
        files.extend(v);
    }
    files
}

/// The files of a pack folder that go into a bundle (those the loader reads), sorted.
///
/// # Errors
/// A file cannot be read or is too large.
pub fn pack_files(dir: &Path, max_file_bytes: u64) -> Result<Vec<(String, Vec<u8>)>, BundleError> {
    let io = |p: &Path, e: &dyn std::fmt::Display| BundleError::Archive(format!("{}: {e}", p.display()));
    let mut out = Vec::new();
    for p in pack_paths(dir) {
        let rel = p.strip_prefix(dir).unwrap_or(&p).to_string_lossy().replace('\\', "/");
        if !p.is_file() || !is_pack_file(&rel) {
            continue;
        }
        let meta = std::fs::metadata(&p).map_err(|e| io(&p, &e))?;
        if meta.len() > max_file_bytes {
            return Err(BundleError::TooLarge { what: rel, limit: max_file_bytes });
        }
        out.push((rel, std::fs::read(&p).map_err(|e| io(&p, &e))?));
    }
    if !out.iter().any(|(p, _)| p == "manifest.yaml") {
        return Err(BundleError::Archive(format!("{}: no manifest.yaml", dir.display())));
    }
    Ok(out)
}

/// `claimgate rules bundle`: the bundle of the pack in `dir`, signed by `keys`. The caller checks the
/// pack first (compile and test cases); this only packs and signs.
///
/// # Errors
/// The folder cannot be read or its manifest.yaml has no name/version.
pub fn build(
    dir: &Path,
    keys: &[SigningKey],
    created_at: &str,
    effective: (Option<String>, Option<String>),
) -> Result<Vec<u8>, BundleError> {
    let files = pack_files(dir, crate::rules::pack::MAX_FILE_BYTES)?;
    let pack_manifest = files.iter().find(|(p, _)| p == "manifest.yaml").map(|(_, b)| b.as_slice()).unwrap_or(b"");
    let m: crate::rules::source::Manifest = serde_norway::from_slice(pack_manifest)
        .map_err(|e| BundleError::Archive(format!("{}/manifest.yaml: {e}", dir.display())))?;
    let manifest = manifest_for(&m.name, &m.version, created_at, effective, &files);
    let mbytes = serde_json::to_vec_pretty(&manifest).map_err(|e| BundleError::Archive(e.to_string()))?;
    let sigs = serde_json::to_vec_pretty(&sign(&mbytes, keys)).map_err(|e| BundleError::Archive(e.to_string()))?;
    write_archive(&mbytes, Some(&sigs), &files)
}

/// What the admin API shows of a bundle.
#[derive(Debug, Clone, Serialize)]
pub struct BundleInfo {
    pub name: String,
    pub version: String,
    /// SHA-256 of the signed manifest.
    pub digest: String,
    pub created_at: String,
    pub effective_from: Option<String>,
    pub effective_until: Option<String>,
    pub key_id: String,
    pub origin: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_round_trip() {
        let (s, p) = generate_keypair().unwrap();
        let sk = parse_secret(&s).unwrap();
        let pk = parse_public(&p).unwrap();
        assert_eq!(sk.verifying_key(), pk);
        assert!(parse_public(&s).is_err(), "a private key is not a public key");
        assert!(parse_public("ed25519-public:AAAA").is_err());
    }

    #[test]
    fn only_loader_files_are_pack_files() {
        for ok in ["manifest.yaml", "rules/a.yaml", "rules/b-1.yml", "tables/x_y.csv", "tests/t.yaml"] {
            assert!(is_pack_file(ok), "{ok}");
        }
        for bad in [
            "README.md",
            "rules/a.txt",
            "rules/sub/a.yaml",
            "../x.yaml",
            "rules/../a.yaml",
            "rules/.h.yaml",
            "x/a.yaml",
        ] {
            assert!(!is_pack_file(bad), "{bad}");
        }
    }
}
