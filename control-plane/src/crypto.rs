//! AES-256-GCM for secrets at rest, and the types that keep secrets out of logs.
//!
//! # Frame
//!
//! Every ciphertext is one self-describing frame:
//!
//! ```text
//! version (1 byte, 0x01) || key id (4 bytes) || nonce (12 bytes) || ciphertext (n bytes) || tag (16 bytes)
//! ```
//!
//! - The **key id** is the first 4 bytes of SHA-256 of the master key, so keys need no names
//!   and rotation only means "put the new key first" (see [`Keyring`]).
//! - The **nonce** is 96 fresh random bits from the OS for every encryption; one key may
//!   encrypt far more secrets than a control plane will ever hold before a collision matters.
//! - The **associated data** given to AES-GCM is `version || key id || caller aad`: the header
//!   is authenticated, and the caller's aad (see [`aad`]) binds the ciphertext to its record
//!   and field, so a ciphertext copied to another record or field fails to decrypt.
//!
//! The smallest frame (empty plaintext) is [`MIN_FRAME_LEN`] = 33 bytes. In JSON the frame is
//! stored as standard base64 ([`Keyring::encrypt_to_string`]).
//!
//! Errors ([`CryptoError`]) never carry plaintext or key material; [`SecretString`] and
//! [`Keyring`] print redacted in `Debug`.

use std::fmt;
use std::io::Write as _;
use std::path::Path;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use rand::RngCore as _;
use rand::rngs::OsRng;
use sha2::{Digest as _, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Frame format version written by this build.
pub const FRAME_VERSION: u8 = 0x01;
/// Length of a master key in bytes (AES-256).
pub const KEY_LEN: usize = 32;
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KEY_ID_LEN;
const PREFIX_LEN: usize = HEADER_LEN + NONCE_LEN;
/// Length of the smallest valid frame (empty plaintext).
pub const MIN_FRAME_LEN: usize = PREFIX_LEN + TAG_LEN;

/// Key material is accepted with or without `=` padding.
const KEY_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a keyring could not be loaded or a frame could not be decrypted.
///
/// No variant carries plaintext or key bytes; key ids are public by design.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The frame names a key that is not in the keyring.
    #[error(
        "ciphertext was encrypted with master key id {0}, which is not loaded; \
         add that key to the keyring (keep old keys until a re-encrypt pass has run)"
    )]
    UnknownKey(String),
    /// The frame is shorter than header + nonce + tag.
    #[error("ciphertext is truncated (shorter than the {MIN_FRAME_LEN}-byte minimum frame)")]
    Truncated,
    /// The first byte is not a frame version this build knows.
    #[error(
        "ciphertext has an unknown format version; it was written by a newer Tollgate or is corrupt"
    )]
    BadVersion,
    /// The tag did not verify: wrong key, wrong record/field, or tampered bytes.
    #[error(
        "ciphertext failed authentication: it was tampered with, copied from another record or \
         field, or encrypted with a different key that has the same id"
    )]
    Authentication,
    /// Stored text is not valid base64.
    #[error("stored ciphertext is not valid base64")]
    Encoding,
    /// Decrypted bytes were expected to be UTF-8 text and are not.
    #[error("decrypted secret is not valid UTF-8")]
    NotUtf8,
    /// Master key material is malformed (message says what to fix).
    #[error("{0}")]
    BadKey(String),
    /// Neither a key file nor the environment variable was given.
    #[error("no master key: pass --master-key-file or set TOLLGATE_MASTER_KEY")]
    NoMasterKey,
    /// Reading or writing a key file failed.
    #[error("master key file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Associated data binding a ciphertext to the record it belongs to and the field it fills.
///
/// Layout: `tollgate/v1\0 || len(record_key) as u32 big-endian || record_key || field`.
/// The length prefix keeps the encoding unambiguous whatever bytes the names contain.
pub fn aad(record_key: &str, field: &str) -> Vec<u8> {
    const DOMAIN: &[u8] = b"tollgate/v1\0";
    let mut out = Vec::with_capacity(DOMAIN.len() + 4 + record_key.len() + field.len());
    out.extend_from_slice(DOMAIN);
    // Record keys are store keys (far below 4 GiB); saturate instead of wrapping just in case.
    let len = u32::try_from(record_key.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(record_key.as_bytes());
    out.extend_from_slice(field.as_bytes());
    out
}

/// One master key; the bytes are wiped when it is dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
struct MasterKey {
    bytes: [u8; KEY_LEN],
    #[zeroize(skip)]
    id: [u8; KEY_ID_LEN],
}

impl MasterKey {
    fn new(bytes: [u8; KEY_LEN]) -> Self {
        let digest = Sha256::digest(bytes);
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        MasterKey { bytes, id }
    }

    fn random() -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(bytes.as_mut());
        Self::new(*bytes)
    }

    // The cipher (with its expanded key schedule) is built per operation rather than kept:
    // key expansion costs ~100 ns and this way no long-lived copy of the schedule exists
    // outside the zeroized key bytes.
    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new((&self.bytes).into())
    }
}

/// The master keys of this control plane: the first encrypts, all decrypt.
///
/// Rotation: prepend a new key (the old ones stay to decrypt), run a re-encrypt pass
/// ([`Keyring::needs_reencrypt`], [`Keyring::reencrypt`]), then drop the old keys.
#[derive(Clone)]
pub struct Keyring {
    /// Never empty; `keys[0]` is the active key.
    keys: Vec<MasterKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active_key_id())
            .field("key_ids", &self.key_ids())
            .finish()
    }
}

impl Keyring {
    /// A keyring with one fresh random key (tests, ephemeral setups).
    pub fn generate() -> Keyring {
        Keyring {
            keys: vec![MasterKey::random()],
        }
    }

    /// A keyring from raw keys, the first one active. Errors when `keys` is empty.
    pub fn from_keys(keys: &[[u8; KEY_LEN]]) -> Result<Keyring, CryptoError> {
        let mut ring = Vec::with_capacity(keys.len());
        for k in keys {
            push_unique(&mut ring, MasterKey::new(*k));
        }
        if ring.is_empty() {
            return Err(CryptoError::NoMasterKey);
        }
        Ok(Keyring { keys: ring })
    }

    /// Parses keys from text: one base64 32-byte key per line or comma-separated; blank lines
    /// and `#` comments are ignored. The first key is the active one.
    pub fn parse(text: &str) -> Result<Keyring, CryptoError> {
        Self::parse_from(text, "the master key text")
    }

    fn parse_from(text: &str, source: &str) -> Result<Keyring, CryptoError> {
        let mut ring = Vec::new();
        for (line_no, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default();
            for item in line.split(',') {
                let item = item.trim();
                if item.is_empty() {
                    continue;
                }
                let where_ = format!("line {} of {source}", line_no + 1);
                push_unique(&mut ring, MasterKey::new(decode_key(item, &where_)?));
            }
        }
        if ring.is_empty() {
            return Err(CryptoError::BadKey(format!(
                "{source} holds no key; expected one base64 32-byte key per line \
                 (generate one with `openssl rand -base64 32`)"
            )));
        }
        Ok(Keyring { keys: ring })
    }

    /// Loads the keyring from `--master-key-file` or from `TOLLGATE_MASTER_KEY`'s value.
    ///
    /// Giving both is refused (which one would be meant is ambiguous); an empty env value counts
    /// as unset. A key file readable by group or others is accepted with a warning, not
    /// refused: Kubernetes mounts Secrets 0644 by default and the file is usually the only
    /// thing in a private volume; refusing would break the standard Helm install.
    pub fn load(file: Option<&Path>, env_value: Option<&str>) -> Result<Keyring, CryptoError> {
        let env_value = env_value.filter(|v| !v.trim().is_empty());
        match (file, env_value) {
            (Some(_), Some(_)) => Err(CryptoError::BadKey(
                "both --master-key-file and TOLLGATE_MASTER_KEY are set; use only one".into(),
            )),
            (Some(path), None) => Self::load_file(path),
            (None, Some(value)) => Self::parse_from(value, "TOLLGATE_MASTER_KEY"),
            (None, None) => Err(CryptoError::NoMasterKey),
        }
    }

    fn load_file(path: &Path) -> Result<Keyring, CryptoError> {
        let io_err = |source| CryptoError::Io {
            path: path.display().to_string(),
            source,
        };
        warn_if_shared(path);
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io_err)?);
        Self::parse_from(&text, &path.display().to_string())
    }

    /// Writes a new random key to `path` (mode 0600, refusing to overwrite an existing file,
    /// which could hold the only key to existing data) and returns the keyring.
    pub fn generate_file(path: &Path) -> Result<Keyring, CryptoError> {
        let io_err = |source| CryptoError::Io {
            path: path.display().to_string(),
            source,
        };
        let key = MasterKey::random();
        let encoded = Zeroizing::new(STANDARD.encode(key.bytes));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(io_err)?;
        let text = Zeroizing::new(format!(
            "# Tollgate master key (AES-256, base64). Keep it secret and backed up:\n\
             # without it the stored provider secrets cannot be decrypted.\n{}\n",
            encoded.as_str()
        ));
        file.write_all(text.as_bytes()).map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        Ok(Keyring { keys: vec![key] })
    }

    /// Loads `path` if it exists, else creates it with [`Keyring::generate_file`] (dev mode).
    /// The boolean is true when the file was created.
    pub fn load_or_generate_file(path: &Path) -> Result<(Keyring, bool), CryptoError> {
        match Self::generate_file(path) {
            Ok(ring) => Ok((ring, true)),
            Err(CryptoError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                Ok((Self::load_file(path)?, false))
            }
            Err(e) => Err(e),
        }
    }

    /// A new random key as base64 text, for rotation tooling.
    pub fn generate_key_base64() -> SecretString {
        SecretString::new(STANDARD.encode(MasterKey::random().bytes))
    }

    /// Hex id of the key that encrypts.
    pub fn active_key_id(&self) -> String {
        hex(&self.active().id)
    }

    /// Hex ids of all loaded keys, active first.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.iter().map(|k| hex(&k.id)).collect()
    }

    fn active(&self) -> &MasterKey {
        // Invariant: constructors never build an empty keyring.
        &self.keys[0]
    }

    /// Encrypts `plaintext` with the active key into a frame bound to `aad`.
    ///
    /// # Panics
    /// Only if `plaintext` exceeds AES-GCM's limit of about 64 GiB.
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let key = self.active();
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);

        let mut frame = Vec::with_capacity(MIN_FRAME_LEN + plaintext.len());
        frame.push(FRAME_VERSION);
        frame.extend_from_slice(&key.id);
        frame.extend_from_slice(&nonce);
        frame.extend_from_slice(plaintext);

        let full_aad = full_aad(&frame[..HEADER_LEN], aad);
        let (head, body) = frame.split_at_mut(PREFIX_LEN);
        let nonce = Nonce::from_slice(&head[HEADER_LEN..]);
        match key
            .cipher()
            .encrypt_in_place_detached(nonce, &full_aad, body)
        {
            Ok(tag) => {
                frame.extend_from_slice(&tag);
                frame
            }
            Err(_) => {
                frame.zeroize();
                panic!("plaintext too long for AES-GCM ({} bytes)", plaintext.len());
            }
        }
    }

    /// Decrypts a frame made by [`Keyring::encrypt`] with the same `aad`.
    pub fn decrypt(&self, frame: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let FrameParts {
            key_id: id,
            nonce,
            sealed,
        } = split_frame(frame)?;
        let (ciphertext, tag) = sealed.split_at(sealed.len() - TAG_LEN);
        let full_aad = full_aad(&frame[..HEADER_LEN], aad);
        let mut candidates = self.keys.iter().filter(|k| k.id == id).peekable();
        if candidates.peek().is_none() {
            return Err(CryptoError::UnknownKey(hex(&id)));
        }
        // Two loaded keys may share a 4-byte id (chance 2^-32 per pair): try each.
        for key in candidates {
            let mut buf = Zeroizing::new(ciphertext.to_vec());
            let ok = key.cipher().decrypt_in_place_detached(
                Nonce::from_slice(nonce),
                &full_aad,
                &mut buf,
                Tag::from_slice(tag),
            );
            if ok.is_ok() {
                return Ok(buf);
            }
        }
        Err(CryptoError::Authentication)
    }

    /// True when `frame` was encrypted with a key other than the active one. Malformed frames
    /// answer false (re-encrypting cannot fix them; decrypting reports why).
    pub fn needs_reencrypt(&self, frame: &[u8]) -> bool {
        matches!(split_frame(frame), Ok(parts) if parts.key_id != self.active().id)
    }

    /// Decrypts `frame` and encrypts it again with the active key (and a fresh nonce).
    pub fn reencrypt(&self, frame: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let plaintext = self.decrypt(frame, aad)?;
        Ok(self.encrypt(&plaintext, aad))
    }

    /// [`Keyring::encrypt`], base64-encoded for storage in JSON.
    pub fn encrypt_to_string(&self, plaintext: &[u8], aad: &[u8]) -> String {
        STANDARD.encode(self.encrypt(plaintext, aad))
    }

    /// [`Keyring::decrypt`] of a base64 frame made by [`Keyring::encrypt_to_string`].
    pub fn decrypt_from_string(
        &self,
        stored: &str,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let frame = STANDARD
            .decode(stored.trim())
            .map_err(|_| CryptoError::Encoding)?;
        self.decrypt(&frame, aad)
    }

    /// [`Keyring::decrypt_from_string`] for secrets that are text (provider tokens).
    pub fn decrypt_secret(&self, stored: &str, aad: &[u8]) -> Result<SecretString, CryptoError> {
        let mut bytes = self.decrypt_from_string(stored, aad)?;
        match String::from_utf8(std::mem::take(&mut *bytes)) {
            Ok(s) => Ok(SecretString::new(s)),
            Err(e) => {
                e.into_bytes().zeroize();
                Err(CryptoError::NotUtf8)
            }
        }
    }

    /// [`Keyring::needs_reencrypt`] for a base64 frame; false when it is not valid base64.
    pub fn needs_reencrypt_string(&self, stored: &str) -> bool {
        STANDARD
            .decode(stored.trim())
            .is_ok_and(|frame| self.needs_reencrypt(&frame))
    }

    /// [`Keyring::reencrypt`] for a base64 frame.
    pub fn reencrypt_string(&self, stored: &str, aad: &[u8]) -> Result<String, CryptoError> {
        let plaintext = self.decrypt_from_string(stored, aad)?;
        Ok(self.encrypt_to_string(&plaintext, aad))
    }
}

fn push_unique(ring: &mut Vec<MasterKey>, key: MasterKey) {
    if ring.iter().any(|k| k.bytes == key.bytes) {
        tracing::warn!(key_id = %hex(&key.id), "master key listed twice; ignoring the repeat");
    } else {
        ring.push(key);
    }
}

fn decode_key(item: &str, where_: &str) -> Result<[u8; KEY_LEN], CryptoError> {
    // The decode error is not shown: it would quote a character of the key.
    let bytes = Zeroizing::new(KEY_B64.decode(item).map_err(|_| {
        CryptoError::BadKey(format!(
            "master key on {where_} is not valid base64; expected 32 random bytes in standard \
             base64 (e.g. `openssl rand -base64 32`)"
        ))
    })?);
    if bytes.len() != KEY_LEN {
        return Err(CryptoError::BadKey(format!(
            "master key must be 32 bytes base64; got {} bytes (on {where_})",
            bytes.len()
        )));
    }
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(&bytes);
    Ok(key)
}

#[cfg(unix)]
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:o}"),
                "master key file is readable by group or others; chmod 600 it \
                 (or set defaultMode: 0400 on the Kubernetes Secret volume)"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &Path) {}

/// Splits a frame into its parts, checking version and length.
struct FrameParts<'a> {
    key_id: [u8; KEY_ID_LEN],
    nonce: &'a [u8],
    /// Ciphertext followed by the tag.
    sealed: &'a [u8],
}

fn split_frame(frame: &[u8]) -> Result<FrameParts<'_>, CryptoError> {
    match frame.first() {
        None => return Err(CryptoError::Truncated),
        Some(&FRAME_VERSION) => {}
        Some(_) => return Err(CryptoError::BadVersion),
    }
    if frame.len() < MIN_FRAME_LEN {
        return Err(CryptoError::Truncated);
    }
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&frame[1..HEADER_LEN]);
    Ok(FrameParts {
        key_id: id,
        nonce: &frame[HEADER_LEN..PREFIX_LEN],
        sealed: &frame[PREFIX_LEN..],
    })
}

fn full_aad(header: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + aad.len());
    out.extend_from_slice(header);
    out.extend_from_slice(aad);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A secret string: wiped from memory on drop, printed as `[redacted]`.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps `s`; the caller should not keep other copies.
    pub fn new(s: String) -> Self {
        SecretString(s)
    }

    /// The secret itself. Keep the borrow short and never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Masked hint for display, see [`mask_hint`].
    pub fn hint(&self) -> String {
        mask_hint(&self.0)
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        SecretString(s)
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        SecretString(s.to_owned())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Masked hint of a secret: `…` plus its last 4 characters when it has at least 12
/// characters, else `…` alone (the tail of a short secret is too much of it).
pub fn mask_hint(s: &str) -> String {
    const MIN_CHARS_FOR_TAIL: usize = 12;
    const TAIL: usize = 4;
    let count = s.chars().count();
    if count < MIN_CHARS_FOR_TAIL {
        return "…".to_owned();
    }
    let tail: String = s.chars().skip(count - TAIL).collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: [u8; KEY_LEN] = [0x11; KEY_LEN];
    const K2: [u8; KEY_LEN] = [0x22; KEY_LEN];

    fn ring(keys: &[[u8; KEY_LEN]]) -> Keyring {
        Keyring::from_keys(keys).unwrap()
    }

    fn b64(k: &[u8]) -> String {
        STANDARD.encode(k)
    }

    #[test]
    fn round_trip() {
        let kr = ring(&[K1]);
        let a = aad("llm/1", "secret");
        for plaintext in [&b""[..], b"x", b"sk-proj-0123456789abcdef", &[0u8; 4096]] {
            let frame = kr.encrypt(plaintext, &a);
            assert_eq!(frame.len(), MIN_FRAME_LEN + plaintext.len());
            assert_eq!(frame[0], FRAME_VERSION);
            assert_eq!(&*kr.decrypt(&frame, &a).unwrap(), plaintext);
        }
    }

    #[test]
    fn string_round_trip() {
        let kr = ring(&[K1]);
        let a = aad("llm/1", "secret");
        let stored = kr.encrypt_to_string(b"sk-test", &a);
        assert_eq!(&*kr.decrypt_from_string(&stored, &a).unwrap(), b"sk-test");
        assert_eq!(kr.decrypt_secret(&stored, &a).unwrap().expose(), "sk-test");
        assert!(matches!(
            kr.decrypt_from_string("not base64!", &a),
            Err(CryptoError::Encoding)
        ));
        let bad_utf8 = kr.encrypt_to_string(&[0xff, 0xfe], &a);
        assert!(matches!(
            kr.decrypt_secret(&bad_utf8, &a),
            Err(CryptoError::NotUtf8)
        ));
    }

    #[test]
    fn key_id_is_sha256_prefix() {
        let digest = Sha256::digest(K1);
        assert_eq!(ring(&[K1]).active_key_id(), hex(&digest[..4]));
        let frame = ring(&[K1]).encrypt(b"x", b"");
        assert_eq!(&frame[1..5], &digest[..4]);
    }

    #[test]
    fn two_encryptions_differ() {
        let kr = ring(&[K1]);
        let a = kr.encrypt(b"same", b"aad");
        let b = kr.encrypt(b"same", b"aad");
        assert_ne!(a, b);
        assert_ne!(
            a[PREFIX_LEN - NONCE_LEN..PREFIX_LEN],
            b[PREFIX_LEN - NONCE_LEN..PREFIX_LEN]
        );
    }

    #[test]
    fn wrong_key_with_same_id_fails_authentication() {
        // A keyring whose key differs but whose id is forced to match: simulates an id
        // collision and checks the tag, not only the id, decides.
        let frame = ring(&[K1]).encrypt(b"secret", b"");
        let mut imposter = ring(&[K2]);
        imposter.keys[0].id = ring(&[K1]).keys[0].id;
        assert!(matches!(
            imposter.decrypt(&frame, b""),
            Err(CryptoError::Authentication)
        ));
    }

    #[test]
    fn unknown_key_id() {
        let frame = ring(&[K1]).encrypt(b"secret", b"");
        let err = ring(&[K2]).decrypt(&frame, b"").unwrap_err();
        match &err {
            CryptoError::UnknownKey(id) => assert_eq!(id, &ring(&[K1]).active_key_id()),
            other => panic!("expected UnknownKey, got {other:?}"),
        }
        assert!(err.to_string().contains("not loaded"));
    }

    #[test]
    fn wrong_aad_fails() {
        let kr = ring(&[K1]);
        let frame = kr.encrypt(b"secret", &aad("llm/1", "secret"));
        let check = |record: &str, field: &str| {
            assert!(
                matches!(
                    kr.decrypt(&frame, &aad(record, field)),
                    Err(CryptoError::Authentication)
                ),
                "{record}/{field} should not decrypt"
            );
        };
        check("llm/2", "secret");
        check("llm/1", "key");
        check("llm/1s", "ecret");
        check("", "llm/1secret");
        assert!(kr.decrypt(&frame, b"").is_err());
    }

    #[test]
    fn aad_is_unambiguous() {
        assert_ne!(aad("a", "bc"), aad("ab", "c"));
        assert_ne!(aad("a\0b", "c"), aad("a", "b\0c"));
        assert!(aad("r", "f").starts_with(b"tollgate/v1\0"));
    }

    #[test]
    fn truncated_frames() {
        let kr = ring(&[K1]);
        let frame = kr.encrypt(b"", b"");
        assert_eq!(frame.len(), MIN_FRAME_LEN);
        for len in 0..MIN_FRAME_LEN {
            assert!(
                matches!(kr.decrypt(&frame[..len], b""), Err(CryptoError::Truncated)),
                "length {len}"
            );
            assert!(!kr.needs_reencrypt(&frame[..len]));
        }
        // A longer frame cut anywhere fails too (as truncated or as unauthenticated).
        let long = kr.encrypt(b"0123456789", b"");
        for len in 0..long.len() {
            assert!(kr.decrypt(&long[..len], b"").is_err(), "length {len}");
        }
    }

    #[test]
    fn tampered_byte_in_each_region() {
        let kr = ring(&[K1, K2]);
        let frame = kr.encrypt(b"provider secret", b"aad");
        let ct_start = PREFIX_LEN;
        let tag_start = frame.len() - TAG_LEN;
        let check = |index: usize, expected: fn(&CryptoError) -> bool| {
            let mut bad = frame.clone();
            bad[index] ^= 0x01;
            let err = kr.decrypt(&bad, b"aad").unwrap_err();
            assert!(expected(&err), "byte {index}: {err:?}");
        };
        check(0, |e| matches!(e, CryptoError::BadVersion));
        for i in 1..HEADER_LEN {
            check(i, |e| matches!(e, CryptoError::UnknownKey(_)));
        }
        for i in (HEADER_LEN..ct_start)
            .chain(ct_start..tag_start)
            .chain(tag_start..frame.len())
        {
            check(i, |e| matches!(e, CryptoError::Authentication));
        }
    }

    #[test]
    fn rotation() {
        let old = ring(&[K1]);
        let a = aad("llm/9", "secret");
        let frame = old.encrypt(b"tok", &a);
        let rotated = ring(&[K2, K1]);
        assert_eq!(&*rotated.decrypt(&frame, &a).unwrap(), b"tok");
        assert!(rotated.needs_reencrypt(&frame));
        assert!(!old.needs_reencrypt(&frame));

        let moved = rotated.reencrypt(&frame, &a).unwrap();
        assert!(!rotated.needs_reencrypt(&moved));
        assert_eq!(moved[1..5], rotated.keys[0].id);
        assert!(matches!(
            old.decrypt(&moved, &a),
            Err(CryptoError::UnknownKey(_))
        ));
        assert_eq!(&*ring(&[K2]).decrypt(&moved, &a).unwrap(), b"tok");
        // Re-encrypting checks the aad like decrypting does.
        assert!(rotated.reencrypt(&frame, b"other").is_err());

        let stored = old.encrypt_to_string(b"tok", &a);
        assert!(rotated.needs_reencrypt_string(&stored));
        let moved = rotated.reencrypt_string(&stored, &a).unwrap();
        assert!(!rotated.needs_reencrypt_string(&moved));
        assert!(!rotated.needs_reencrypt_string("%%%"));
    }

    #[test]
    fn parse_keys() {
        let check =
            |text: &str, expected: Result<usize, &str>| match (Keyring::parse(text), expected) {
                (Ok(kr), Ok(n)) => assert_eq!(kr.keys.len(), n, "{text:?}"),
                (Err(e), Err(msg)) => {
                    let e = e.to_string();
                    assert!(e.contains(msg), "{text:?}: {e}");
                }
                (got, want) => panic!("{text:?}: got {got:?}, want {want:?}"),
            };
        let (k1, k2) = (b64(&K1), b64(&K2));
        check(&k1, Ok(1));
        check(&format!("{k1}\n{k2}\n"), Ok(2));
        check(&format!("# new key first\n\n{k2}\n  {k1}  # old\n"), Ok(2));
        check(&format!("{k2},{k1}"), Ok(2));
        check(&format!("{k1}\n{k1}"), Ok(1));
        check(k1.trim_end_matches('='), Ok(1));
        check("", Err("holds no key"));
        check("# only a comment\n", Err("holds no key"));
        check(
            &b64(&[1u8; 16]),
            Err("master key must be 32 bytes base64; got 16 bytes"),
        );
        check(
            &format!("{k1}\n{}", b64(&[1u8; 33])),
            Err("got 33 bytes (on line 2"),
        );
        check("not*base64", Err("is not valid base64"));

        let kr = Keyring::parse(&format!("{k2}\n{k1}")).unwrap();
        assert_eq!(kr.active_key_id(), ring(&[K2]).active_key_id());
    }

    #[test]
    fn load_sources() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        std::fs::write(&path, format!("{}\n", b64(&K1))).unwrap();

        #[cfg(unix)]
        {
            // Group/other-readable is warned about, not refused (Kubernetes mounts 0644).
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let from_file = Keyring::load(Some(&path), None).unwrap();
        assert_eq!(from_file.active_key_id(), ring(&[K1]).active_key_id());
        let from_env = Keyring::load(None, Some(&b64(&K2))).unwrap();
        assert_eq!(from_env.active_key_id(), ring(&[K2]).active_key_id());
        // An empty env value counts as unset.
        assert!(Keyring::load(Some(&path), Some("  ")).is_ok());

        let msg = |r: Result<Keyring, CryptoError>| r.unwrap_err().to_string();
        assert_eq!(
            msg(Keyring::load(None, None)),
            "no master key: pass --master-key-file or set TOLLGATE_MASTER_KEY"
        );
        assert!(msg(Keyring::load(Some(&path), Some(&b64(&K2)))).contains("use only one"));
        assert!(msg(Keyring::load(Some(&dir.path().join("missing")), None)).contains("missing"));
        assert!(msg(Keyring::load(None, Some("abc"))).contains("TOLLGATE_MASTER_KEY"));
    }

    #[test]
    fn generate_file_is_private_and_loadable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let created = Keyring::generate_file(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let loaded = Keyring::load(Some(&path), None).unwrap();
        assert_eq!(loaded.active_key_id(), created.active_key_id());
        // Never overwrites a key file.
        assert!(Keyring::generate_file(&path).is_err());
        let (again, was_created) = Keyring::load_or_generate_file(&path).unwrap();
        assert!(!was_created);
        assert_eq!(again.active_key_id(), created.active_key_id());
        let (_, was_created) = Keyring::load_or_generate_file(&dir.path().join("new.key")).unwrap();
        assert!(was_created);
    }

    #[test]
    fn generated_keys_are_fresh_and_valid() {
        let a = Keyring::generate_key_base64();
        let b = Keyring::generate_key_base64();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(Keyring::parse(a.expose()).unwrap().keys.len(), 1);
        assert_ne!(
            Keyring::generate().active_key_id(),
            Keyring::generate().active_key_id()
        );
    }

    #[test]
    fn debug_output_is_redacted() {
        let kr = ring(&[K1, K2]);
        let dbg = format!("{kr:?}");
        assert!(dbg.contains(&kr.active_key_id()), "{dbg}");
        for key in [K1, K2] {
            assert!(!dbg.contains(&b64(&key)));
            assert!(!dbg.contains("17, 17"), "{dbg}"); // 0x11 bytes as a debug array
            assert!(!dbg.contains(&hex(&key)));
        }
        let secret = SecretString::from("sk-live-abcdefghijklmnop");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&secret)), "Some([redacted])");
        let err = ring(&[K2])
            .decrypt(&kr.encrypt(b"sk-live", b""), b"x")
            .unwrap_err();
        assert!(!format!("{err:?} {err}").contains("sk-live"));
    }

    #[test]
    fn hint_rules() {
        let check = |s: &str, expected: &str| {
            assert_eq!(mask_hint(s), expected, "{s:?}");
            assert_eq!(SecretString::from(s).hint(), expected, "{s:?}");
        };
        check("", "…");
        check("abc", "…");
        check("sk-12345678", "…"); // 11 chars: too short to show any of it
        check("sk-123456789", "…6789"); // 12 chars
        check("sk-proj-abcdefghijklmnopWXYZ", "…WXYZ");
        check("ééééééééééé€€€€", "…€€€€"); // counts characters, not bytes
        check("éééééééééé€", "…");
    }
}
