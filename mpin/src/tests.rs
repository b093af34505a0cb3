//! Logins with shares of two authorities, and everything that must fail.

use miracl_core::bls12381::big::BIG;
use miracl_core::bls12381::ecp::ECP;
use miracl_core::bls12381::pair;
use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng as _;
use rand_chacha::ChaCha20Rng;

use super::*;

const TODAY: Day = Day(20_000);

struct Setup {
    dtas: [MasterShare; 2],
    id: MpinId,
}

fn setup(seed: u64) -> Setup {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    Setup {
        dtas: [
            MasterShare::generate(&mut rng),
            MasterShare::generate(&mut rng),
        ],
        id: MpinId::new(format!("https://idp.example|user-{seed}|02ab")).unwrap(),
    }
}

impl Setup {
    fn secret(&self, from: &[&MasterShare]) -> ClientSecret {
        let shares: Vec<_> = from
            .iter()
            .map(|d| d.client_share(&self.id).unwrap())
            .collect();
        ClientSecret::combine(&shares).unwrap()
    }

    fn permit(&self, from: &[&MasterShare], day: Day) -> TimePermit {
        let shares: Vec<_> = from
            .iter()
            .map(|d| d.time_permit_share(&self.id, day).unwrap())
            .collect();
        TimePermit::combine(&shares).unwrap()
    }

    fn server(&self, from: &[&MasterShare]) -> ServerSecret {
        let shares: Vec<_> = from.iter().map(|d| d.server_share()).collect();
        ServerSecret::combine(&shares).unwrap()
    }

    fn both(&self) -> [&MasterShare; 2] {
        [&self.dtas[0], &self.dtas[1]]
    }
}

/// One whole login: the client's token and PIN, its permit and the server's day.
fn login(
    id: &MpinId,
    token: &Token,
    pin: u16,
    permit: &TimePermit,
    server: &ServerSecret,
    today: Day,
) -> Result<Authenticated, MpinError> {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let (client, commitment) =
        ClientAwaitingChallenge::start(&mut rng, id, token, Pin::new(pin)?, permit)?;
    let (pending, challenge) = ServerAwaitingProof::challenge(&mut rng, commitment, today)?;
    let proof = client.prove(&challenge)?;
    pending.verify(&proof, server)
}

#[test]
fn a_two_authority_login_succeeds_and_a_wrong_pin_is_refused() {
    let s = setup(1);
    let token = s
        .secret(&s.both())
        .extract_pin(&s.id, Pin::new(1234).unwrap())
        .unwrap();
    let permit = s.permit(&s.both(), TODAY);
    let server = s.server(&s.both());
    let ok = login(&s.id, &token, 1234, &permit, &server, TODAY).unwrap();
    assert_eq!((ok.id, ok.day), (s.id.clone(), TODAY));
    assert_eq!(
        login(&s.id, &token, 1235, &permit, &server, TODAY),
        Err(MpinError::Refused)
    );
    // The token survives storage.
    let stored = Token::from_bytes(&token.to_bytes()).unwrap();
    assert!(login(&s.id, &stored, 1234, &permit, &server, TODAY).is_ok());
}

#[test]
fn a_secret_missing_a_share_is_refused() {
    let s = setup(2);
    let server = s.server(&s.both());
    let permit = s.permit(&s.both(), TODAY);
    for one in &s.dtas {
        let token = s
            .secret(&[one])
            .extract_pin(&s.id, Pin::new(1).unwrap())
            .unwrap();
        assert_eq!(
            login(&s.id, &token, 1, &permit, &server, TODAY),
            Err(MpinError::Refused)
        );
        // A permit from one authority only, with the whole secret.
        let whole = s
            .secret(&s.both())
            .extract_pin(&s.id, Pin::new(1).unwrap())
            .unwrap();
        assert_eq!(
            login(&s.id, &whole, 1, &s.permit(&[one], TODAY), &server, TODAY),
            Err(MpinError::Refused)
        );
        // A server holding one share only.
        assert_eq!(
            login(&s.id, &whole, 1, &permit, &s.server(&[one]), TODAY),
            Err(MpinError::Refused)
        );
    }
}

#[test]
fn a_permit_of_another_day_or_identity_is_refused() {
    let s = setup(3);
    let token = s
        .secret(&s.both())
        .extract_pin(&s.id, Pin::new(42).unwrap())
        .unwrap();
    let server = s.server(&s.both());
    let yesterday = s.permit(&s.both(), Day(TODAY.0 - 1));
    assert_eq!(
        login(&s.id, &token, 42, &yesterday, &server, TODAY),
        Err(MpinError::PermitDay {
            permit: Day(TODAY.0 - 1),
            today: TODAY
        })
    );
    // Yesterday's permit point presented as today's: the pairing fails.
    let relabelled = TimePermit::from_parts(TODAY, yesterday.point().clone());
    assert_eq!(
        login(&s.id, &token, 42, &relabelled, &server, TODAY),
        Err(MpinError::Refused)
    );
    // Another identity's permit.
    let other = setup(4);
    let wrong = TimePermit::from_parts(TODAY, other.permit(&s.both(), TODAY).point().clone());
    assert_eq!(
        login(&s.id, &token, 42, &wrong, &server, TODAY),
        Err(MpinError::Refused)
    );
    assert_eq!(
        TimePermit::combine(&[
            s.dtas[0].time_permit_share(&s.id, TODAY).unwrap(),
            s.dtas[1].time_permit_share(&s.id, Day(1)).unwrap(),
        ]),
        Err(MpinError::MixedDays)
    );
}

#[test]
fn bad_points_scalars_pins_and_identities_are_refused() {
    let s = setup(5);
    let good = s.dtas[0].client_share(&s.id).unwrap().0.to_bytes();
    assert_eq!(G1::from_bytes(&good).unwrap().to_bytes(), good);
    assert!(G1::from_bytes(&good[..48]).is_err());
    let mut bad_prefix = good;
    bad_prefix[0] = 0x04;
    assert!(G1::from_bytes(&bad_prefix).is_err());
    assert!(G1::from_bytes(&[0u8; 49]).is_err());
    // x = p - 1 style garbage: all ones is above the field modulus.
    let mut above = [0xffu8; 49];
    above[0] = 0x02;
    assert!(G1::from_bytes(&above).is_err());

    // A point on the curve outside the prime-order subgroup (no cofactor clearing).
    let outside = (1..1000)
        .map(|x| ECP::new_big(&BIG::new_int(x)))
        .find(|p| !p.is_infinity() && !pair::g1member(p))
        .expect("a small x on the curve but outside the subgroup");
    let mut bytes = [0u8; 49];
    outside.tobytes(&mut bytes, true);
    assert_eq!(
        G1::from_bytes(&bytes),
        Err(MpinError::Point("not in the prime-order subgroup"))
    );

    let server = s.dtas[0].server_share().0.to_bytes();
    assert_eq!(G2::from_bytes(&server).unwrap().to_bytes(), server);
    let mut flipped = server;
    flipped[40] ^= 1;
    assert!(G2::from_bytes(&flipped).is_err());

    assert!(Scalar::from_bytes(&[0u8; 48]).is_err());
    assert!(Scalar::from_bytes(&[0xffu8; 48]).is_err());
    assert!(MasterShare::from_bytes(&s.dtas[0].to_bytes()[..]).is_ok());
    assert_eq!(Pin::new(10_000), Err(MpinError::Pin));
    assert_eq!(MpinId::new(""), Err(MpinError::Identity(0)));
    assert!(MpinId::new(vec![b'x'; 1025]).is_err());
    assert_eq!(ClientSecret::combine(&[]), Err(MpinError::NoShares));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// Summed shares are what one authority with `s1 + s2` would issue, and no share
    /// alone verifies.
    #[test]
    fn summed_shares_equal_a_single_authority_with_the_summed_secret(seed in any::<u64>()) {
        let s = setup(seed);
        let sum = s.dtas[0].sum(&s.dtas[1]).unwrap();
        prop_assert_eq!(s.secret(&s.both()), ClientSecret::combine(&[sum.client_share(&s.id).unwrap()]).unwrap());
        prop_assert_eq!(s.permit(&s.both(), TODAY), s.permit(&[&sum], TODAY));
        prop_assert_eq!(s.server(&s.both()), s.server(&[&sum]));

        let server = s.server(&s.both());
        let permit = s.permit(&s.both(), TODAY);
        let pin = (seed % 10_000) as u16;
        let whole = s.secret(&s.both()).extract_pin(&s.id, Pin::new(pin).unwrap()).unwrap();
        prop_assert!(login(&s.id, &whole, pin, &permit, &server, TODAY).is_ok());
        for one in &s.dtas {
            let token = s.secret(&[one]).extract_pin(&s.id, Pin::new(pin).unwrap()).unwrap();
            prop_assert_eq!(login(&s.id, &token, pin, &permit, &server, TODAY), Err(MpinError::Refused));
        }
    }
}

#[test]
fn a_wiped_secret_point_holds_nothing_of_the_secret() {
    let authority = MasterShare::generate(&mut rand_core::OsRng);
    let mut g1 = authority
        .client_share(&MpinId::new("wiped").unwrap())
        .unwrap()
        .0;
    let mut g2 = authority.server_share().0;
    let (secret1, secret2) = (g1.to_bytes(), g2.to_bytes());
    g1.wipe();
    g2.wipe();
    // The identity now: no longer the secret, and no point a reader would accept.
    assert_ne!(g1.to_bytes(), secret1);
    assert_ne!(g2.to_bytes()[..], secret2[..]);
    assert!(G1::from_bytes(&g1.to_bytes()).is_err());
    assert!(G2::from_bytes(&g2.to_bytes()).is_err());
}
