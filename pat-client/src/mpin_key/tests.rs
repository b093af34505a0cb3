//! Assembling the device key from D-TA answers, as the D-TA writes them.

use milagro_mpin::{ClientAwaitingChallenge, MasterShare, ServerAwaitingProof, ServerSecret};
use rand_core::OsRng;
use serde_json::json;

use super::*;

const TODAY: Day = Day(20_000);

fn dta_digest(n: u8) -> Digest {
    Digest::sha256(&[n])
}

/// A D-TA's answer, as `POST /v1/shares/client` writes it.
fn answer(share: &MasterShare, dta: Digest, id: &str, day: Day) -> Value {
    let mpin_id = MpinId::new(id).unwrap();
    json!({
        "kind": "client",
        "mpin_id": id,
        "client_share": hex::encode(share.client_share(&mpin_id).unwrap().0.to_bytes()),
        "time_permit": {
            "day": day.0,
            "share": hex::encode(share.time_permit_share(&mpin_id, day).unwrap().point.to_bytes()),
        },
        "dta": dta,
    })
}

fn logs_in(key: &MpinKey, pin: u16, server: &ServerSecret) -> bool {
    let (client, commitment) = ClientAwaitingChallenge::start(
        &mut OsRng,
        &key.id,
        &key.token,
        Pin::new(pin).unwrap(),
        &key.permit,
    )
    .unwrap();
    let (pending, challenge) =
        ServerAwaitingProof::challenge(&mut OsRng, commitment, TODAY).unwrap();
    pending
        .verify(&client.prove(&challenge).unwrap(), server)
        .is_ok()
}

#[test]
fn two_d_tas_answers_make_a_key_that_logs_in_with_its_pin_only_and_survives_storage() {
    let dtas = [
        MasterShare::generate(&mut OsRng),
        MasterShare::generate(&mut OsRng),
    ];
    let server = ServerSecret::combine(&[dtas[0].server_share(), dtas[1].server_share()]).unwrap();
    let shares: Vec<DtaShares> = dtas
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let digest = dta_digest(i as u8);
            DtaShares::from_json(&answer(d, digest, "id-1", TODAY), digest).unwrap()
        })
        .collect();
    let key = MpinKey::assemble(&shares, Pin::new(4321).unwrap()).unwrap();
    assert!(logs_in(&key, 4321, &server));
    assert!(!logs_in(&key, 4320, &server));

    // One D-TA's shares alone do not make the key.
    let alone = MpinKey::assemble(&shares[..1], Pin::new(4321).unwrap()).unwrap();
    assert!(!logs_in(&alone, 4321, &server));

    let dir = tempfile::tempdir().unwrap();
    assert_eq!(MpinKey::load(dir.path()).unwrap(), None);
    key.save(dir.path()).unwrap();
    let stored = std::fs::read_to_string(dir.path().join(MPIN_KEY_FILE)).unwrap();
    assert!(!stored.contains("4321"));
    for share in &shares {
        // Neither share is stored, only their sum without the PIN.
        assert!(!stored.contains(&hex::encode(share.client.0.to_bytes())));
    }
    let loaded = MpinKey::load(dir.path()).unwrap().unwrap();
    assert_eq!(loaded, key);
    assert!(logs_in(&loaded, 4321, &server));
}

#[test]
fn mismatched_duplicate_foreign_and_malformed_answers_are_refused() {
    let d = [
        MasterShare::generate(&mut OsRng),
        MasterShare::generate(&mut OsRng),
    ];
    let pin = Pin::new(1).unwrap();
    let read = |body: &Value, dta: Digest| DtaShares::from_json(body, dta);

    // An answer from another D-TA than the one asked.
    assert!(read(&answer(&d[0], dta_digest(0), "id", TODAY), dta_digest(9)).is_err());

    // Two identities, two days, or one D-TA twice.
    let a = read(&answer(&d[0], dta_digest(0), "id", TODAY), dta_digest(0)).unwrap();
    let other_id = read(&answer(&d[1], dta_digest(1), "other", TODAY), dta_digest(1)).unwrap();
    let other_day = read(&answer(&d[1], dta_digest(1), "id", Day(1)), dta_digest(1)).unwrap();
    assert!(MpinKey::assemble(&[a.clone(), other_id], pin).is_err());
    assert!(MpinKey::assemble(&[a.clone(), other_day], pin).is_err());
    assert!(MpinKey::assemble(&[a.clone(), a.clone()], pin).is_err());
    assert!(MpinKey::assemble(&[], pin).is_err());

    // Malformed answers: wrong kind, a point off the subgroup, bad hex, a missing day.
    let good = answer(&d[0], dta_digest(0), "id", TODAY);
    let mut wrong_kind = good.clone();
    wrong_kind["kind"] = json!("server");
    let mut off_curve = good.clone();
    off_curve["client_share"] = json!(format!("02{}", "ff".repeat(48)));
    let mut not_hex = good.clone();
    not_hex["time_permit"]["share"] = json!("zz");
    let mut no_day = good;
    no_day["time_permit"]["day"] = json!(null);
    for body in [wrong_kind, off_curve, not_hex, no_day] {
        assert!(
            matches!(read(&body, dta_digest(0)), Err(Error::MpinShares(_))),
            "{body}"
        );
    }
}

#[test]
fn a_renewed_permit_sums_every_d_tas_share_of_the_new_day_and_nothing_else() {
    let masters = [
        MasterShare::generate(&mut OsRng),
        MasterShare::generate(&mut OsRng),
    ];
    let digests = [dta_digest(1), dta_digest(2)];
    let answers: Vec<_> = masters
        .iter()
        .zip(digests)
        .map(|(m, d)| DtaShares::from_json(&answer(m, d, "badge", TODAY), d).unwrap())
        .collect();
    let pin = Pin::new(1234).unwrap();
    let mut key = MpinKey::assemble(&answers, pin).unwrap();
    let id = key.id.clone();
    let tomorrow = Day(TODAY.0 + 1);
    let renewal = |n: usize, day: Day, id: &MpinId| {
        (
            digests[n],
            id.clone(),
            masters[n].time_permit_share(id, day).unwrap(),
        )
    };

    let other = MpinId::new("someone else").unwrap();
    for bad in [
        vec![renewal(0, tomorrow, &id)],
        vec![renewal(0, tomorrow, &id), renewal(0, tomorrow, &id)],
        vec![renewal(0, tomorrow, &id), renewal(1, tomorrow, &other)],
        vec![renewal(0, tomorrow, &id), renewal(1, TODAY, &id)],
    ] {
        assert!(key.renew_permit(&bad).is_err());
        assert_eq!(key.permit.day(), TODAY, "a refused renewal changes nothing");
    }
    key.renew_permit(&[renewal(1, tomorrow, &id), renewal(0, tomorrow, &id)])
        .unwrap();
    assert_eq!(key.permit.day(), tomorrow);
    let server =
        ServerSecret::combine(&[masters[0].server_share(), masters[1].server_share()]).unwrap();
    let (client, commitment) =
        ClientAwaitingChallenge::start(&mut OsRng, &key.id, &key.token, pin, &key.permit).unwrap();
    let (pending, challenge) =
        ServerAwaitingProof::challenge(&mut OsRng, commitment, tomorrow).unwrap();
    assert!(pending
        .verify(&client.prove(&challenge).unwrap(), &server)
        .is_ok());
}
