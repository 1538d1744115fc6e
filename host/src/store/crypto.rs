//! Secret values at rest: XChaCha20-Poly1305 (RustCrypto) under one master
//! key, taken from `STEPHOST_MASTER_KEY` (64 hex digits) or from a key file
//! created on first use with owner-only permissions. Each value is bound to
//! what it belongs to (associated data), so a ciphertext moved to another
//! account or field does not decrypt.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::io::Write;
use std::path::Path;

/// The environment variable holding the master key.
pub const MASTER_KEY_ENV: &str = "STEPHOST_MASTER_KEY";

/// Why the master key could not be had or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The variable is set but is not a 32-byte key in hex.
    #[error("{MASTER_KEY_ENV} must be 64 hex digits (32 bytes)")]
    BadEnvKey,
    /// The key file could not be read, created or understood.
    #[error("master key file {path}: {message}")]
    File {
        /// The key file.
        path: String,
        /// What went wrong with it.
        message: String,
    },
    /// A stored value does not open under this key: another key encrypted
    /// it, or it was moved or altered.
    #[error(
        "cannot decrypt {what}: wrong master key (it was encrypted under another {MASTER_KEY_ENV} or key file)"
    )]
    WrongKey {
        /// What could not be decrypted, e.g. `account slack/work`.
        what: String,
    },
}

/// The master key. Never printed (no `Debug` of its bytes).
pub struct MasterKey {
    cipher: XChaCha20Poly1305,
    /// The key itself, kept only to derive purpose keys from.
    bytes: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

impl MasterKey {
    /// From `STEPHOST_MASTER_KEY` if set, else from `key_file` if it exists;
    /// `None` when neither is there. A node joining a shared database must
    /// not make a new random key: the database already has one.
    pub fn load_existing(key_file: &Path) -> Result<Option<Self>, KeyError> {
        if std::env::var_os(MASTER_KEY_ENV).is_some() || key_file.exists() {
            return Self::load(key_file).map(Some);
        }
        Ok(None)
    }

    /// From `STEPHOST_MASTER_KEY` if set, else from `key_file`, creating it
    /// (owner-only) with a fresh random key if it does not exist.
    pub fn load(key_file: &Path) -> Result<Self, KeyError> {
        if let Ok(hex_key) = std::env::var(MASTER_KEY_ENV) {
            return Self::from_hex(hex_key.trim()).ok_or(KeyError::BadEnvKey);
        }
        let fail = |message: String| KeyError::File { path: key_file.display().to_string(), message };
        match std::fs::read_to_string(key_file) {
            Ok(text) => Self::from_hex(text.trim()).ok_or_else(|| fail("does not hold 64 hex digits".into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes).map_err(|e| fail(format!("no randomness: {e}")))?;
                if let Some(dir) = key_file.parent() {
                    crate::base::files::create_private_dir(dir).map_err(|e| fail(e.to_string()))?;
                }
                // Written whole under another name, then linked into place:
                // processes starting at once on a new data directory never
                // read a half-written key, and all but one adopt the winner's.
                // A name of its own per attempt (threads of one process too),
                // created exclusively: never a file or link someone placed.
                let temporary = key_file.with_extension(format!(
                    "new.{}.{}",
                    std::process::id(),
                    &crate::base::ids::unguessable_hex()[..12]
                ));
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(&temporary).map_err(|e| fail(e.to_string()))?;
                file.write_all(hex::encode(bytes).as_bytes()).map_err(|e| fail(e.to_string()))?;
                let linked = std::fs::hard_link(&temporary, key_file);
                let _ = std::fs::remove_file(&temporary);
                match linked {
                    Ok(()) => Ok(Self::from_bytes(&bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(key_file),
                    Err(e) => Err(fail(e.to_string())),
                }
            }
            Err(e) => Err(fail(e.to_string())),
        }
    }

    fn from_hex(text: &str) -> Option<Self> {
        let bytes: [u8; 32] = hex::decode(text).ok()?.try_into().ok()?;
        Some(Self::from_bytes(&bytes))
    }

    /// A key from raw bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self { cipher: XChaCha20Poly1305::new(bytes.into()), bytes: *bytes }
    }

    /// A key for one `purpose` (e.g. `audit log`), derived from the master
    /// key with HMAC-SHA256 (HKDF-Expand, one block): a lower layer gets a
    /// key of its own and never the master key, and the same master key
    /// always gives the same purpose key.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac =
            <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.bytes).expect("HMAC takes any key length");
        mac.update(b"stephost ");
        mac.update(purpose.as_bytes());
        mac.update(&[1]);
        mac.finalize().into_bytes().into()
    }

    /// The key the audit log's chain is made with.
    pub fn audit_key(&self) -> crate::audit::AuditKey {
        crate::audit::AuditKey::new(self.derive_key("audit log"))
    }

    /// Encrypts `plaintext` bound to `context`: a random 24-byte nonce
    /// followed by the ciphertext and tag.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Vec<u8> {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).expect("the OS random number generator failed");
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: context.as_bytes() })
            .expect("encryption of an in-memory buffer cannot fail");
        [nonce.as_slice(), &sealed].concat()
    }

    /// Decrypts what [`MasterKey::seal`] made for the same `context`.
    pub fn open(&self, blob: &[u8], context: &str) -> Result<Vec<u8>, KeyError> {
        let wrong = || KeyError::WrongKey { what: context.to_string() };
        if blob.len() < 24 {
            return Err(wrong());
        }
        let (nonce, sealed) = blob.split_at(24);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: context.as_bytes() })
            .map_err(|_| wrong())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_are_bound_to_their_context() {
        let key = MasterKey::from_bytes(&[7; 32]);
        let blob = key.seal(b"xoxb-secret", "account slack/work oauth_access_token");
        assert!(!blob.windows(11).any(|w| w == b"xoxb-secret"));
        assert_eq!(key.open(&blob, "account slack/work oauth_access_token").unwrap(), b"xoxb-secret");
        assert!(key.open(&blob, "account slack/other oauth_access_token").is_err());
        let other = MasterKey::from_bytes(&[8; 32]);
        let err = other.open(&blob, "account slack/work oauth_access_token").unwrap_err().to_string();
        assert!(err.contains("wrong master key"), "{err}");
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_master_key_and_are_stable() {
        let key = MasterKey::from_bytes(&[7; 32]);
        assert_eq!(key.derive_key("audit log"), MasterKey::from_bytes(&[7; 32]).derive_key("audit log"));
        assert_ne!(key.derive_key("audit log"), key.derive_key("other"));
        assert_ne!(key.derive_key("audit log"), MasterKey::from_bytes(&[8; 32]).derive_key("audit log"));
        assert_ne!(key.derive_key("audit log"), [7; 32]);
    }

    #[test]
    fn every_seal_of_the_same_value_has_its_own_nonce() {
        let key = MasterKey::from_bytes(&[7; 32]);
        let first = key.seal(b"xoxb-secret", "account slack/work field oauth_access_token");
        let second = key.seal(b"xoxb-secret", "account slack/work field oauth_access_token");
        assert_ne!(first[..24], second[..24], "a nonce was used twice");
        assert_ne!(first[24..], second[24..], "equal values give equal ciphertexts");
        for blob in [&first, &second] {
            assert_eq!(
                key.open(blob, "account slack/work field oauth_access_token").unwrap(),
                b"xoxb-secret"
            );
        }
    }

    #[test]
    fn a_ciphertext_moved_to_another_account_or_field_does_not_decrypt() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = crate::catalog::Catalog::builtin();
        let mut store = crate::store::Store::open(dir.path()).unwrap();
        let fields = |token: &str| vec![("oauth_access_token".to_string(), token.to_string())];
        store.connect_account(&catalog, "slack", "work", &fields("xoxb-work-token")).unwrap();
        store.connect_account(&catalog, "slack", "home", &fields("xoxb-home-token")).unwrap();
        store.set_env("API_KEY", "env-secret", true, None).unwrap();
        // Copy work's sealed token over home's, as someone with write access
        // to the database file could.
        store
            .conn
            .execute(
                "UPDATE account_fields SET sealed = (SELECT f.sealed FROM account_fields f JOIN accounts a
                   ON a.id = f.account_id WHERE a.name = 'work' AND f.key = 'oauth_access_token')
                 WHERE account_id = (SELECT id FROM accounts WHERE name = 'home')",
                [],
            )
            .unwrap();
        let err = store.account_fields("slack", "home").unwrap_err().to_string();
        assert!(err.contains("cannot decrypt account slack/home field oauth_access_token"), "{err}");
        assert_eq!(store.account_fields("slack", "work").unwrap()[0].value, "xoxb-work-token");
        // And into another kind of field: an environment variable.
        store
            .conn
            .execute(
                "UPDATE env SET sealed = (SELECT f.sealed FROM account_fields f JOIN accounts a
                   ON a.id = f.account_id WHERE a.name = 'work')",
                [],
            )
            .unwrap();
        let err = store.env_for(None).unwrap_err().to_string();
        assert!(err.contains("cannot decrypt env /API_KEY"), "{err}");
    }

    #[test]
    fn a_key_file_is_created_owner_only_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/master.key");
        let first = MasterKey::load(&path).unwrap();
        let blob = first.seal(b"v", "c");
        let second = MasterKey::load(&path).unwrap();
        assert_eq!(second.open(&blob, "c").unwrap(), b"v");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&path, "not hex").unwrap();
        assert!(MasterKey::load(&path).unwrap_err().to_string().contains("64 hex digits"));
    }
}
