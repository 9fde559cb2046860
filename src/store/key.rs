//! Private key files and the pseudonymisation of identifiers: the journal's `journal.key`, the
//! copies of a shared store's keys, and the `psn_key` a store keeps in its owner's meta table.

use super::{Store, StoreError, P};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

/// Keyed pseudonyms for identifiers.
#[derive(Clone)]
pub struct Pseudonymizer {
    key: [u8; 32],
}

/// A 32-byte key file, if there is one.
pub fn read_key(p: &Path) -> anyhow::Result<Option<[u8; 32]>> {
    match std::fs::read(p) {
        Ok(k) => Ok(Some(k.try_into().map_err(|_| anyhow::anyhow!("{}: not a 32-byte key", p.display()))?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("{}: {e}", p.display())),
    }
}

pub fn random_key() -> anyhow::Result<[u8; 32]> {
    let mut k = [0u8; 32];
    getrandom::getrandom(&mut k).map_err(|e| anyhow::anyhow!("no randomness for the journal key: {e}"))?;
    Ok(k)
}

impl Pseudonymizer {
    pub fn from_key(key: [u8; 32]) -> Pseudonymizer {
        Pseudonymizer { key }
    }

    /// Loads `journal.key` from `dir`, creating it (32 random bytes, mode 0600) on first use.
    ///
    /// # Errors
    /// The key cannot be read or created.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Pseudonymizer> {
        let p = dir.join("journal.key");
        let key = match read_key(&p)? {
            Some(k) => k,
            None => {
                let k = random_key()?;
                write_private(&p, &k, false)?;
                k
            }
        };
        Ok(Pseudonymizer { key })
    }

    pub(crate) fn key(&self) -> [u8; 32] {
        self.key
    }

    pub fn hash(&self, id: &str) -> String {
        if id.is_empty() {
            return String::new();
        }
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.key) else { return String::new() };
        mac.update(id.as_bytes());
        mac.finalize().into_bytes().iter().take(16).map(|b| format!("{b:02x}")).collect()
    }
}

/// Writes a key file readable by its owner only, synced to disk; `replace: false` refuses to
/// overwrite an existing file.
pub fn write_private(p: &std::path::Path, bytes: &[u8], replace: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true);
    if replace {
        o.create(true).truncate(true);
    } else {
        o.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(p).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The key kept as `psn_key` (hex) in the meta table `table` (`h_meta`, `j_meta`), set to `offer`
/// when the store has none yet: every instance on a shared store then reads the same key.
///
/// # Errors
/// The store failed, or holds a key that is not 32 hex-encoded bytes.
pub fn meta_key(store: &dyn Store, table: &str, offer: &[u8; 32]) -> Result<[u8; 32], StoreError> {
    let hex: String = offer.iter().map(|b| format!("{b:02x}")).collect();
    let (put, get) = (
        format!("INSERT INTO {table} (k, v) VALUES ('psn_key', $1) ON CONFLICT (k) DO NOTHING"),
        format!("SELECT v FROM {table} WHERE k = 'psn_key'"),
    );
    let mut out = String::new();
    store.tx(&mut |c| {
        c.exec(&put, &[P::T(&hex)])?;
        out = c.query(&get, &[])?.first().map(|r| r[0].string()).unwrap_or_default();
        Ok(true)
    })?;
    let bytes = (0..out.len() / 2)
        .map(|i| u8::from_str_radix(out.get(2 * i..2 * i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| StoreError::Sql(format!("{table}.psn_key is not hex")))?;
    bytes.try_into().map_err(|_| StoreError::Sql(format!("{table}.psn_key is not 32 bytes")))
}
