//! Checkpoints, specified by the C2SP examples, the key-ID recipe computed by hand, every
//! rejection path, and a parser that never panics nor accepts an altered checkpoint.

use proptest::prelude::*;

use super::*;

fn secret(byte: u8) -> SecretKey {
    SecretKey::from_bytes(&[byte; 32]).unwrap()
}

fn name(text: &str) -> KeyName {
    KeyName::new(text).unwrap()
}

/// The tree head of the C2SP `tlog-checkpoint` example.
fn spec_head() -> TreeHead {
    let root = STANDARD
        .decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
        .unwrap();
    TreeHead {
        size: TreeSize::new(20852163),
        root: Digest::from_slice(&root).unwrap(),
    }
}

fn signed() -> SignedCheckpoint {
    let checkpoint = Checkpoint::new("example.com/behind-the-sofa", spec_head()).unwrap();
    checkpoint.sign(&name("example.com/behind-the-sofa"), &secret(7))
}

fn parse(note: &str) -> Result<SignedCheckpoint, CheckpointError> {
    SignedCheckpoint::parse(
        note,
        &name("example.com/behind-the-sofa"),
        &secret(7).public_key(),
    )
}

#[test]
fn the_body_is_the_c2sp_example_byte_for_byte() {
    let checkpoint = Checkpoint::new("example.com/behind-the-sofa", spec_head()).unwrap();
    assert_eq!(
        checkpoint.to_body(),
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    );
}

#[test]
fn the_note_is_body_blank_line_and_one_em_dash_signature_line() {
    let signed = signed();
    let note = signed.to_note();
    let body = signed.checkpoint().to_body();
    let line = note
        .strip_prefix(&format!("{body}\n"))
        .and_then(|rest| rest.strip_prefix("\u{2014} example.com/behind-the-sofa "))
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap();
    let bytes = STANDARD.decode(line).unwrap();
    assert_eq!(bytes.len(), 4 + 64);

    // Key ID, recomputed from the recipe: SHA-256(name ‖ 0x0A ‖ 0xff ‖ identifier ‖ SEC1)[:4].
    let public = secret(7).public_key();
    let recipe = [
        b"example.com/behind-the-sofa\n\xffmilagro-trust/ecdsa-secp256k1-sha256".as_slice(),
        &public.to_sec1(),
    ]
    .concat();
    assert_eq!(bytes[..4], Digest::sha256(&recipe).as_bytes()[..4]);

    // The rest is a plain ECDSA signature over SHA-256 of the body: the anchored digest.
    assert_eq!(signed.digest(), Digest::sha256(body.as_bytes()));
    let signature = Signature::from_compact(&bytes[4..]).unwrap();
    public.verify_digest(&signed.digest(), &signature).unwrap();
    assert_eq!(signature, *signed.signature());
}

#[test]
fn signing_is_deterministic_and_parsing_round_trips() {
    let signed = signed();
    assert_eq!(signed.to_note(), self::signed().to_note());
    let parsed = parse(&signed.to_note()).unwrap();
    assert_eq!(parsed, signed);
    assert_eq!(parsed.checkpoint().tree_head(), spec_head());
    assert_eq!(
        parsed.key_id(),
        KeyId::of(
            &name("example.com/behind-the-sofa"),
            &secret(7).public_key()
        )
    );
}

#[test]
fn extension_lines_are_kept_so_the_signed_digest_is_unchanged() {
    let mut checkpoint = Checkpoint::new("log", spec_head()).unwrap();
    checkpoint.extensions = vec!["ext one".into(), "ext two".into()];
    let signed = checkpoint.sign(&name("log"), &secret(3));
    let parsed =
        SignedCheckpoint::parse(&signed.to_note(), &name("log"), &secret(3).public_key()).unwrap();
    assert_eq!(parsed.checkpoint().extensions(), ["ext one", "ext two"]);
    assert_eq!(parsed.digest(), signed.digest());
    assert!(signed.to_note().contains("\next two\n\n\u{2014} log "));
}

#[test]
fn signatures_by_other_keys_are_ignored() {
    let ours = signed().to_note();
    let other_name = Checkpoint::new("example.com/behind-the-sofa", spec_head())
        .unwrap()
        .sign(&name("witness.example"), &secret(9))
        .to_note();
    let witness_line = other_name.rsplit_once("\n\n").unwrap().1;
    let same_name_other_key = signed()
        .checkpoint()
        .sign(&name("example.com/behind-the-sofa"), &secret(8));
    let impostor_line = same_name_other_key
        .to_note()
        .rsplit_once("\n\n")
        .unwrap()
        .1
        .to_owned();

    let cosigned = format!("{ours}{witness_line}{impostor_line}");
    assert_eq!(parse(&cosigned).unwrap(), signed());
    // Only signatures by others: no signature by the expected key.
    assert!(matches!(
        parse(&other_name),
        Err(CheckpointError::NoSignatureFromKey { key_name, .. }) if key_name == "example.com/behind-the-sofa"
    ));
    assert!(matches!(
        parse(&same_name_other_key.to_note()),
        Err(CheckpointError::NoSignatureFromKey { .. })
    ));
}

#[test]
fn key_names_and_origins_are_checked() {
    for bad in [
        "",
        "a b",
        "a+b",
        "a\u{a0}b",
        "a\tb",
        "a\u{7f}b",
        &"n".repeat(MAX_NAME_LEN + 1),
    ] {
        assert!(
            matches!(
                KeyName::new(bad),
                Err(CheckpointError::InvalidKeyName { .. })
            ),
            "{bad:?}"
        );
    }
    assert_eq!(
        name("milagro.example/tbs").to_string(),
        "milagro.example/tbs"
    );
    for bad in ["", "two\nlines", "nul\0", &"o".repeat(MAX_NAME_LEN + 1)] {
        assert!(
            matches!(
                Checkpoint::new(bad, spec_head()),
                Err(CheckpointError::InvalidOrigin { .. })
            ),
            "{bad:?}"
        );
    }
    // Spaces are allowed in an origin (only recommended against).
    Checkpoint::new("a log with spaces", spec_head()).unwrap();
}

/// Replaces the first `from` in a valid note; the signature line is left as it was.
fn altered(from: &str, to: &str) -> String {
    let note = signed().to_note();
    assert!(note.contains(from), "{from:?}");
    note.replacen(from, to, 1)
}

/// Each malformed note, and the start of the `Debug` form of the error it must get.
#[test]
fn every_malformed_note_is_refused_with_its_reason() {
    let note = signed().to_note();
    let (body, sig_line) = note.split_once("\n\n").unwrap();
    let size = "\n20852163\n";
    let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
    let sofa = "\n\n\u{2014} example.com/behind-the-sofa ";
    let cases = [
        (format!("{}{note}", "x".repeat(MAX_NOTE_LEN)), "TooLong"),
        (
            altered(size, "\r\n20852163\n"),
            "ControlCharacter { offset: 27, found: '\\r'",
        ),
        (altered(size, "\n2085\t2163\n"), "ControlCharacter"),
        (note.trim_end().to_owned(), "MissingFinalNewline"),
        (format!("{body}\n{sig_line}"), "NoSignatures"),
        (format!("{body}\n\n"), "NoSignatures"),
        (altered("20852163\n", ""), "TooFewLines { found: 2 }"),
        (format!("{body}\n\n\n{sig_line}"), "EmptyLine { line: 4 }"),
        (altered(size, "\n020852163\n"), "InvalidTreeSize"),
        (altered(size, "\n+20852163\n"), "InvalidTreeSize"),
        (altered(size, "\n-1\n"), "InvalidTreeSize"),
        (altered(size, "\n 20852163\n"), "InvalidTreeSize"),
        (altered(size, "\n0x13e2e43\n"), "InvalidTreeSize"),
        (altered(size, "\n\u{663}\n"), "InvalidTreeSize"),
        (altered(size, "\n18446744073709551616\n"), "InvalidTreeSize"),
        (
            altered(root, root.trim_end_matches('=')),
            "InvalidRootEncoding",
        ),
        (
            altered(root, &root.replace('/', "_")),
            "InvalidRootEncoding",
        ),
        (
            altered(root, &root.replace("2I=", "2J=")),
            "InvalidRootEncoding",
        ),
        (
            altered(root, &STANDARD.encode([1u8; 31])),
            "InvalidRootLength { len: 31 }",
        ),
        (
            altered(root, &STANDARD.encode([1u8; 33])),
            "InvalidRootLength { len: 33 }",
        ),
        (altered("\u{2014} ", "-- "), "MalformedSignatureLine"),
        (altered("sofa ", "sofa"), "MalformedSignatureLine"),
        (altered(sofa, &format!("{sofa}!")), "MalformedSignatureLine"),
        (
            format!("{body}\n\n\u{2014} k AAAA\n"),
            "MalformedSignatureLine",
        ),
        (
            format!("{note}\u{2014} a+b AAAAAAA=\n"),
            "MalformedSignatureLine",
        ),
        (format!("{note}{sig_line}"), "DuplicateSignature"),
        (altered(size, "\n20852164\n"), "BadSignature"),
        (altered("sofa\n", "couch\n"), "BadSignature"),
    ];
    for (note, expected) in cases {
        let error = parse(&note).unwrap_err();
        assert!(
            format!("{error:?}").starts_with(expected),
            "{note:?}: got {error:?}"
        );
        assert!(!error.to_string().is_empty());
    }
}

#[test]
fn a_high_s_or_truncated_signature_is_refused() {
    let signed = signed();
    let body = signed.checkpoint().to_body();
    let with_bytes = |bytes: &[u8]| {
        let mut encoded = signed.key_id().to_bytes().to_vec();
        encoded.extend_from_slice(bytes);
        format!(
            "{body}\n\u{2014} example.com/behind-the-sofa {}\n",
            STANDARD.encode(encoded)
        )
    };
    // s' = n - s verifies as ECDSA but is the high-S twin Bitcoin and we refuse.
    let compact = signed.signature().to_compact();
    use k256::elliptic_curve::PrimeField;
    let s_bytes: [u8; 32] = compact[32..].try_into().unwrap();
    let s = k256::Scalar::from_repr(s_bytes.into()).unwrap();
    let high_s: [u8; 32] = (-s).to_bytes().into();
    let high = [&compact[..32], &high_s].concat();
    for bytes in [
        high.as_slice(),
        &compact[..63],
        &[compact.as_slice(), &[0]].concat(),
    ] {
        assert!(matches!(
            parse(&with_bytes(bytes)),
            Err(CheckpointError::BadSignature {
                source: KeyError::InvalidSignature,
                ..
            })
        ));
    }
}

fn valid_origin() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9./_ é-]{1,40}"
}

proptest! {
    #[test]
    fn any_checkpoint_round_trips_through_its_note(
        origin in valid_origin(),
        tree_size in any::<u64>(),
        root in any::<[u8; 32]>(),
    ) {
        let head = TreeHead { size: TreeSize::new(tree_size), root: Digest::from_bytes(root) };
        let checkpoint = Checkpoint::new(&origin, head).unwrap();
        let signed = checkpoint.sign(&name("milagro.example/tbs"), &secret(5));
        let parsed = SignedCheckpoint::parse(&signed.to_note(), &name("milagro.example/tbs"), &secret(5).public_key());
        prop_assert_eq!(parsed, Ok(signed));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn the_parser_never_panics_on_arbitrary_text(text in any::<String>()) {
        let _ = parse(&text);
    }

    #[test]
    fn the_parser_never_panics_on_note_shaped_text(
        text in "([a-z./]{0,8}|[0-9+-]{0,4}|[A-Za-z0-9+/=]{0,48}|\u{2014} [a-z.+]{0,8} [A-Za-z0-9+/=]{0,96}|\r|\t){0,6}(\n{0,2}){0,6}",
    ) {
        let _ = parse(&text);
    }

    /// Mutations: overwrite, insert or delete bytes anywhere in a valid note. Whatever
    /// survives parsing must carry exactly the checkpoint that was signed.
    #[test]
    fn a_mutated_note_never_panics_and_never_yields_another_checkpoint(
        edits in proptest::collection::vec((0u8..3, any::<usize>(), any::<u8>()), 1..4),
    ) {
        let original = signed();
        let mut bytes = original.to_note().into_bytes();
        for (kind, at, byte) in edits {
            let at = at % (bytes.len() + 1);
            match kind {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ if at < bytes.len() => { bytes.remove(at); }
                _ => {}
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(parsed) = parse(&text) {
            prop_assert_eq!(parsed.checkpoint(), original.checkpoint());
        }
    }
}

/// A Birth Certificate of `key` in `version`, listing the derived purpose keys in version 2.
fn certificate(key: &SecretKey, version: u32) -> BirthCertificate {
    use crate::birth_certificate::{BcFields, Role, Status, VERSION_1};
    use crate::purpose_keys::PurposeKeys;
    let keys = if version == VERSION_1 {
        PurposeKeys::none()
    } else {
        PurposeKeys::derive(Role::Tbs, key).unwrap()
    };
    let fields = BcFields {
        version,
        role: Role::Tbs,
        name: "TBS".into(),
        endpoints: vec![],
        created: 1_700_000_000,
        public_key: key.public_key(),
        status: Status::Active,
        previous: None,
        keys,
    };
    BirthCertificate::sign(fields, key).unwrap()
}

#[test]
fn a_certified_note_verifies_only_under_the_listed_checkpoint_key() {
    let anchored = secret(9);
    let bc = certificate(&anchored, crate::birth_certificate::VERSION_2);
    let key_name = name("milagro.example/tbs");
    let checkpoint = Checkpoint::new("milagro.example/tbs", spec_head()).unwrap();
    let checkpoint_key = crate::purpose_keys::derive(&anchored, KeyPurpose::Checkpoint).unwrap();
    let genuine = checkpoint.sign(&key_name, &checkpoint_key).to_note();
    let parsed = SignedCheckpoint::parse_certified(&genuine, &key_name, &bc).unwrap();
    assert_eq!(parsed.checkpoint(), &checkpoint);
    // The same checkpoint signed by the anchored key: refused, although that key is in
    // the certificate too.
    let by_anchored_key = checkpoint.sign(&key_name, &anchored).to_note();
    assert!(matches!(
        SignedCheckpoint::parse_certified(&by_anchored_key, &key_name, &bc),
        Err(CheckpointError::NoSignatureFromKey { .. })
    ));
    // A version 1 certificate lists no checkpoint key: no note verifies against it.
    let v1 = certificate(&anchored, crate::birth_certificate::VERSION_1);
    assert!(matches!(
        SignedCheckpoint::parse_certified(&by_anchored_key, &key_name, &v1),
        Err(CheckpointError::NoCheckpointKey(_))
    ));
}
