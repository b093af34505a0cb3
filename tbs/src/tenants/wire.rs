//! The tenant API's bodies ([`milagro_wire::tbs::tenants`]) to and from the checked model:
//! a request's text is parsed here (a bad value is a [`ModelError`], answered 400), and
//! what is stored is shown as the API documents it.

use milagro_wire::tbs::tenants as wire;

use super::model::{DisplayName, Group, GroupSpec, ModelError, ServiceRef, ServiceUrl, Tenant};

impl TryFrom<wire::ServiceRef> for ServiceRef {
    type Error = ModelError;

    fn try_from(service: wire::ServiceRef) -> Result<Self, ModelError> {
        Ok(Self {
            birth_certificate: service.birth_certificate,
            url: ServiceUrl::new(&service.url)?,
        })
    }
}

impl TryFrom<wire::GroupSpec> for GroupSpec {
    type Error = ModelError;

    /// Parses every value; the limits across values are [`GroupSpec::check`]'s.
    fn try_from(spec: wire::GroupSpec) -> Result<Self, ModelError> {
        let enrolment_keys = spec
            .enrolment_keys
            .iter()
            .map(|key| {
                key.parse()
                    .map_err(|_| ModelError::InvalidKey(key.chars().take(66).collect()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            name: DisplayName::new(&spec.name)?,
            mode: spec.mode,
            dtas: spec
                .dtas
                .into_iter()
                .map(ServiceRef::try_from)
                .collect::<Result<_, _>>()?,
            idp: spec.idp.map(ServiceRef::try_from).transpose()?,
            enrolment_keys,
        })
    }
}

impl ServiceRef {
    /// As the API shows it.
    pub fn to_wire(&self) -> wire::ServiceRef {
        wire::ServiceRef {
            birth_certificate: self.birth_certificate,
            url: self.url.as_str().to_owned(),
        }
    }
}

impl Group {
    /// As the API shows it.
    pub fn to_wire(&self) -> wire::Group {
        wire::Group {
            tenant: self.tenant.to_string(),
            id: self.id.to_string(),
            name: self.name.as_str().to_owned(),
            mode: self.mode,
            dtas: self.dtas.iter().map(ServiceRef::to_wire).collect(),
            idp: self.idp.as_ref().map(ServiceRef::to_wire),
            revision: self.revision,
            enrolment_keys: self
                .enrolment_keys
                .iter()
                .map(ToString::to_string)
                .collect(),
        }
    }
}

impl Tenant {
    /// As the API shows it.
    pub fn to_wire(&self) -> wire::Tenant {
        wire::Tenant {
            id: self.id.to_string(),
            name: self.name.as_str().to_owned(),
        }
    }
}
