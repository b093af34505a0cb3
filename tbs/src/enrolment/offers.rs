//! Offers that hold a pool coin until their device signs, or until they lapse.
//!
//! A direct-mode offer is paid from a pool coin, but the payment is only *built*: it is
//! broadcast together with the device's signed anchor, after the TBS checked that anchor
//! (`docs/enrolment.md`, "pay after sign"). Until then the coin is reserved for the offer:
//! taken out of the free coins (`p\0` rows, `pool.rs`) in the same atomic write that
//! stores the offer and its expiry entry, `x\0` ‖ expires at (Unix seconds, 8 bytes
//! big-endian) ‖ device key (33 bytes) → the tenant's id. After each sync step,
//! [`EnrolmentStore::expire_offers`] turns every lapsed offer into an `Expired` row and
//! puts its coin back, again in one write; [`EnrolmentStore::mark_broadcast`] ends a
//! reservation when the device signs in time. Both are sled transactions on the same
//! row, so a signature arriving as its offer lapses either wins (the coin is spent) or
//! finds the row expired (the coin is free again): never both.
//!
//! A device that never signs therefore costs the TBS nothing: no transaction of its offer
//! ever leaves the TBS.

use milagro_anchor::anchor_tx::FundingUtxo;
use milagro_anchor::keys::PublicKey;
use sled::transaction::ConflictableTransactionError;

use super::pool::coin_key;
use super::store::{
    enrolment_key, is_expired, storage, transaction_error, Enrolment, EnrolmentState,
    EnrolmentStoreError, Reservation,
};
use super::EnrolmentStore;
use crate::tenants::model::TenantId;

/// The expiry entry of an offer lapsing at `expires_at`.
pub(super) fn expiry_key(expires_at: u64, device: &PublicKey) -> Vec<u8> {
    [
        b"x\0".as_slice(),
        &expires_at.to_be_bytes(),
        &device.to_sec1(),
    ]
    .concat()
}

/// What [`EnrolmentStore::reserve_offer`] did.
#[derive(Debug)]
#[non_exhaustive]
pub enum Reserved {
    /// The offer is stored and holds its coin.
    Stored(Enrolment),
    /// The device already had a live row; nothing was written.
    Existing(Enrolment),
    /// Another offer took the coin first; nothing was written (pick another coin).
    CoinTaken,
}

impl EnrolmentStore {
    /// A free pool coin, without taking it ([`EnrolmentStore::reserve_offer`] takes it).
    pub fn free_coin(&self) -> Result<Option<FundingUtxo>, EnrolmentStoreError> {
        self.first_coin_from(b"p\0".to_vec())
    }

    /// A free coin after `taken` (which another offer took first), else the first free
    /// one: concurrent offers racing for the first coin move on instead of retrying it.
    pub fn free_coin_after(
        &self,
        taken: &FundingUtxo,
    ) -> Result<Option<FundingUtxo>, EnrolmentStoreError> {
        let after = [coin_key(&taken.outpoint).as_slice(), &[0]].concat();
        match self.first_coin_from(after)? {
            Some(coin) => Ok(Some(coin)),
            None => self.free_coin(),
        }
    }

    fn first_coin_from(&self, start: Vec<u8>) -> Result<Option<FundingUtxo>, EnrolmentStoreError> {
        let Some(entry) = self.tree.range(start..).next() else {
            return Ok(None);
        };
        let (key, value) = entry.map_err(storage)?;
        if key.starts_with(b"p\0") {
            super::pool::coin_from(&key, &value).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Stores `offer` (an `Offered` row holding `reservation`) and takes its coin out of
    /// the pool, in one write, unless the device has a live row or the coin is taken.
    pub fn reserve_offer(
        &self,
        offer: &Enrolment,
        reservation: &Reservation,
    ) -> Result<Reserved, EnrolmentStoreError> {
        let key = enrolment_key(&offer.device);
        let coin = coin_key(&reservation.coin);
        let expiry = expiry_key(reservation.expires_at, &offer.device);
        let bytes = serde_json::to_vec(offer).map_err(storage)?;
        let tenant = offer.tenant.as_str().as_bytes();
        let outcome = self
            .tree
            .transaction(|tx| {
                if let Some(existing) = tx.get(&key)? {
                    if !is_expired(&existing) {
                        return Ok(Err(existing.to_vec()));
                    }
                }
                if tx.remove(coin.as_slice())?.is_none() {
                    return Ok(Ok(false));
                }
                tx.insert(key.as_slice(), bytes.as_slice())?;
                tx.insert(expiry.as_slice(), tenant)?;
                Ok(Ok(true))
            })
            .map_err(transaction_error)?;
        match outcome {
            Ok(false) => Ok(Reserved::CoinTaken),
            Ok(true) => {
                self.tree.flush().map_err(storage)?;
                Ok(Reserved::Stored(offer.clone()))
            }
            Err(existing) => serde_json::from_slice(&existing)
                .map(Reserved::Existing)
                .map_err(storage),
        }
    }

    /// Offers of `tenant`'s devices holding a coin, counted up to `limit`.
    pub fn pending_offers(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<usize, EnrolmentStoreError> {
        let mut count = 0;
        for entry in self.tree.scan_prefix(b"x\0") {
            let (_, value) = entry.map_err(storage)?;
            if value.as_ref() == tenant.as_str().as_bytes() {
                count += 1;
                if count >= limit {
                    break;
                }
            }
        }
        Ok(count)
    }

    /// Every offer lapsed at `now` becomes `Expired` and its coin free again; returns how
    /// many did.
    pub fn expire_offers(&self, now: u64) -> Result<usize, EnrolmentStoreError> {
        let end = [b"x\0".as_slice(), &now.saturating_add(1).to_be_bytes()].concat();
        let lapsed: Vec<sled::IVec> = self
            .tree
            .range(b"x\0".to_vec()..end)
            .keys()
            .collect::<Result<_, _>>()
            .map_err(storage)?;
        let mut expired = 0;
        for entry in lapsed {
            let device = entry
                .get(10..)
                .map(PublicKey::from_sec1)
                .transpose()
                .map_err(storage)?
                .ok_or_else(|| storage("malformed offer expiry key"))?;
            let key = enrolment_key(&device);
            let freed = self
                .tree
                .transaction(|tx| {
                    tx.remove(entry.as_ref())?;
                    let Some(bytes) = tx.get(&key)? else {
                        return Ok(false);
                    };
                    let mut row: Enrolment = serde_json::from_slice(&bytes)
                        .map_err(|_| ConflictableTransactionError::Abort(()))?;
                    let EnrolmentState::Offered {
                        reservation: Some(reservation),
                        ..
                    } = &row.state
                    else {
                        return Ok(false);
                    };
                    if expiry_key(reservation.expires_at, &device) != entry.as_ref() {
                        return Ok(false);
                    }
                    tx.insert(
                        coin_key(&reservation.coin),
                        &reservation.value_sat.to_be_bytes(),
                    )?;
                    row.state = EnrolmentState::Expired { expired_at: now };
                    let bytes = serde_json::to_vec(&row)
                        .map_err(|_| ConflictableTransactionError::Abort(()))?;
                    tx.insert(key.as_slice(), bytes)?;
                    Ok(true)
                })
                .map_err(transaction_error)?;
            if freed {
                tracing::info!(%device, "an enrolment offer lapsed unsigned; its pool coin is free again");
                expired += 1;
            }
        }
        if expired > 0 {
            self.tree.flush().map_err(storage)?;
        }
        Ok(expired)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::tenants::model::GroupId;
    use bitcoin::{Amount, OutPoint, Txid};
    use milagro_anchor::envelope::InstructionKey;
    use milagro_anchor::keys::SecretKey;
    use rand_core::OsRng;

    fn store() -> EnrolmentStore {
        let db = sled::Config::new().temporary(true).open().unwrap();
        EnrolmentStore::open(&db).unwrap()
    }

    fn coin(byte: u8) -> FundingUtxo {
        FundingUtxo {
            outpoint: OutPoint::new(
                <Txid as bitcoin::hashes::Hash>::from_byte_array([byte; 32]),
                0,
            ),
            value: Amount::from_sat(1_500),
        }
    }

    fn add_coin(store: &EnrolmentStore, coin: &FundingUtxo) {
        store
            .tree
            .insert(coin_key(&coin.outpoint), &coin.value.to_sat().to_be_bytes())
            .unwrap();
    }

    fn offer(device: &PublicKey, coin: &FundingUtxo, expires_at: u64) -> (Enrolment, Reservation) {
        let reservation = Reservation {
            coin: coin.outpoint,
            value_sat: coin.value.to_sat(),
            expires_at,
        };
        let row = Enrolment {
            device: *device,
            tenant: TenantId::new("acme").unwrap(),
            group: GroupId::new("eu").unwrap(),
            birth_certificate: "{}".into(),
            instruction_key: InstructionKey::generate(&mut OsRng),
            state: EnrolmentState::Offered {
                funding_tx: String::new(),
                offer_psbt: String::new(),
                reservation: Some(reservation),
            },
        };
        (row, reservation)
    }

    fn device() -> PublicKey {
        SecretKey::generate(&mut OsRng).public_key()
    }

    #[test]
    fn a_coin_serves_one_offer_and_comes_back_when_the_offer_lapses() {
        let store = store();
        let (first, second) = (coin(1), coin(2));
        add_coin(&store, &first);
        add_coin(&store, &second);
        let tenant = TenantId::new("acme").unwrap();
        let (a, b) = (device(), device());
        let (row, reservation) = offer(&a, &first, 100);
        assert!(matches!(
            store.reserve_offer(&row, &reservation).unwrap(),
            Reserved::Stored(_)
        ));
        // Another device racing for the same coin is told to pick another.
        let (row_b, taken) = offer(&b, &first, 100);
        assert!(matches!(
            store.reserve_offer(&row_b, &taken).unwrap(),
            Reserved::CoinTaken
        ));
        assert_eq!(store.free_coin_after(&first).unwrap(), Some(second));
        // The same device asking again finds its live offer.
        assert!(matches!(
            store.reserve_offer(&row, &reservation).unwrap(),
            Reserved::Existing(_)
        ));
        assert_eq!(store.pending_offers(&tenant, 10).unwrap(), 1);
        assert_eq!(store.expire_offers(99).unwrap(), 0, "not yet");
        assert_eq!(store.expire_offers(100).unwrap(), 1);
        assert_eq!(store.pending_offers(&tenant, 10).unwrap(), 0);
        assert!(matches!(
            store.get(&a).unwrap().unwrap().state,
            EnrolmentState::Expired { expired_at: 100 }
        ));
        assert_eq!(store.free_coins(10), 2, "the coin is back");
        // An expired device gets a new offer.
        let (again, reservation) = offer(&a, &first, 200);
        assert!(matches!(
            store.reserve_offer(&again, &reservation).unwrap(),
            Reserved::Stored(_)
        ));
    }

    #[test]
    fn a_signature_in_time_ends_the_reservation_and_the_coin_stays_spent() {
        let store = store();
        let first = coin(1);
        add_coin(&store, &first);
        let a = device();
        let (row, reservation) = offer(&a, &first, 100);
        store.reserve_offer(&row, &reservation).unwrap();
        let broadcast = EnrolmentState::Broadcast {
            funding_tx: String::new(),
            anchor_tx: String::new(),
            txid: <Txid as bitcoin::hashes::Hash>::from_byte_array([9; 32]),
        };
        let stored = store
            .mark_broadcast(&a, broadcast.clone())
            .unwrap()
            .unwrap();
        assert_eq!(stored.state, broadcast);
        assert_eq!(store.expire_offers(1_000).unwrap(), 0);
        assert_eq!(store.free_coins(10), 0);
        assert_eq!(store.get(&a).unwrap().unwrap().state, broadcast);
    }

    #[test]
    fn a_signature_after_the_offer_lapsed_changes_nothing() {
        let store = store();
        let first = coin(1);
        add_coin(&store, &first);
        let a = device();
        let (row, reservation) = offer(&a, &first, 100);
        store.reserve_offer(&row, &reservation).unwrap();
        store.expire_offers(100).unwrap();
        let broadcast = EnrolmentState::Broadcast {
            funding_tx: String::new(),
            anchor_tx: String::new(),
            txid: <Txid as bitcoin::hashes::Hash>::from_byte_array([9; 32]),
        };
        let stored = store.mark_broadcast(&a, broadcast).unwrap().unwrap();
        assert!(matches!(stored.state, EnrolmentState::Expired { .. }));
        assert_eq!(store.free_coins(10), 1);
    }
}
