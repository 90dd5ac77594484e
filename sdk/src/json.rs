//! Admin messages in their proto3 JSON mapping (lowerCamelCase names, enum names, RFC 3339
//! timestamps, 64-bit integers as strings), through `prost-reflect` and the descriptor set
//! that `tollgate-proto` embeds.

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

use crate::proto;

/// A message of the admin package, with its fully qualified protobuf name.
pub trait ProtoName: prost::Message {
    /// E.g. `tollgate.admin.v1.AiLlm`.
    const FULL_NAME: &'static str;
}

/// Why a message could not be rendered as JSON (a build or descriptor mismatch, not user input).
#[derive(Debug, thiserror::Error)]
#[error("cannot render {name} as JSON: {reason}")]
pub struct JsonError {
    name: &'static str,
    reason: String,
}

/// The descriptor pool of every Tollgate proto (well-known imports included).
pub fn descriptor_pool() -> Result<&'static DescriptorPool, JsonError> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(tollgate_proto::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|reason| JsonError {
        name: "descriptor set",
        reason: reason.clone(),
    })
}

/// Options used for every rendering: the standard mapping, plus fields at their default value
/// (so `secretSet: false` and `environments: []` are visible to scripts).
pub fn serialize_options() -> SerializeOptions {
    SerializeOptions::new().skip_default_fields(false)
}

/// A message ready to serialize in its proto3 JSON mapping, fields in declaration order
/// (unlike a `serde_json::Value`, whose keys are sorted).
#[derive(Debug, Clone)]
pub struct ProtoJson(DynamicMessage);

impl serde::Serialize for ProtoJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_with_options(s, &serialize_options())
    }
}

/// Wraps one message for serialization with any serde format (JSON, YAML).
pub fn proto_json<M: ProtoName>(message: &M) -> Result<ProtoJson, JsonError> {
    let err = |reason: String| JsonError {
        name: M::FULL_NAME,
        reason,
    };
    let desc = descriptor_pool()?
        .get_message_by_name(M::FULL_NAME)
        .ok_or_else(|| err("message not in the descriptor set".to_string()))?;
    DynamicMessage::decode(desc, message.encode_to_vec().as_slice())
        .map(ProtoJson)
        .map_err(|e| err(e.to_string()))
}

/// Wraps messages for serialization as one array.
pub fn proto_json_list<M: ProtoName>(messages: &[M]) -> Result<Vec<ProtoJson>, JsonError> {
    messages.iter().map(proto_json).collect()
}

/// Renders one message as its proto3 JSON value.
pub fn to_json<M: ProtoName>(message: &M) -> Result<serde_json::Value, JsonError> {
    serde_json::to_value(proto_json(message)?).map_err(|e| JsonError {
        name: M::FULL_NAME,
        reason: e.to_string(),
    })
}

/// Renders messages as a JSON array.
pub fn to_json_array<M: ProtoName>(messages: &[M]) -> Result<serde_json::Value, JsonError> {
    messages
        .iter()
        .map(to_json)
        .collect::<Result<Vec<_>, _>>()
        .map(serde_json::Value::Array)
}

macro_rules! proto_names {
    ($($ty:ident)*) => {
        $(impl ProtoName for proto::$ty {
            const FULL_NAME: &'static str = concat!("tollgate.admin.v1.", stringify!($ty));
        })*
        #[cfg(test)]
        const ALL_NAMES: &[&str] = &[$(<proto::$ty as ProtoName>::FULL_NAME),*];
    };
}

proto_names! {
    RepositoryRef AiLlm CreateAiLlmRequest CreateAiLlmResponse ListAiLlmsRequest
    ListAiLlmsResponse ListAvailableAiLlmsRequest GetAiLlmRequest StringList UpdateAiLlmRequest
    UpdateAiLlmResponse DeleteAiLlmRequest DeleteAiLlmResponse ValidateAiLlmRequest
    ValidateAiLlmResponse GetAiLlmStatsRequest UsageTotals UsageBucket AiLlmStats
    GetAiLlmStatsResponse Workspace CreateWorkspaceRequest ListWorkspacesRequest
    ListWorkspacesResponse GetWorkspaceRequest DeleteWorkspaceRequest DeleteWorkspaceResponse
    RouteTarget Route Repository CreateRepositoryRequest ListRepositoriesRequest
    ListRepositoriesResponse GetRepositoryRequest DeleteRepositoryRequest DeleteRepositoryResponse
    AttachAiLlmRequest DetachAiLlmRequest SetRouteRequest DeleteRouteRequest ApiKey
    CreateApiKeyRequest CreateApiKeyResponse ListApiKeysRequest ListApiKeysResponse
    RevokeApiKeyRequest RenameApiKeyRequest Policy CreatePolicyRequest ListPoliciesRequest
    ListPoliciesResponse GetPolicyRequest UpdatePolicyRequest DeletePolicyRequest
    DeletePolicyResponse PolicyRules PolicyViolation ListPolicyViolationsRequest
    ListPolicyViolationsResponse TestPolicyRequest TestPolicyResponse PolicyAssistant
    ReviewPolicyRequest PolicyIssue PolicyReview RecommendPoliciesRequest RecommendedPolicy
    RecommendPoliciesResponse
    RoleBinding AdminToken CreateAdminTokenRequest CreateAdminTokenResponse ListAdminTokensRequest
    ListAdminTokensResponse RevokeAdminTokenRequest WhoAmIRequest GetUsageRequest UsageRow
    GetUsageResponse
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> proto::AiLlm {
        proto::AiLlm {
            id: "llm_1".into(),
            workspace_id: "ws_1".into(),
            name: "openai-prod".into(),
            ai_type: proto::AiType::Openai as i32,
            endpoint: "https://api.openai.com/v1".into(),
            secret_set: true,
            secret_hint: "…abcd".into(),
            environments: vec!["production".into()],
            created_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            validation_success: Some(false),
            version: 3,
            ..Default::default()
        }
    }

    #[test]
    fn descriptor_set_includes_well_known_imports() -> Result<(), JsonError> {
        let pool = descriptor_pool()?;
        assert!(
            pool.get_message_by_name("google.protobuf.Timestamp")
                .is_some()
        );
        assert!(
            pool.get_message_by_name("google.protobuf.FieldMask")
                .is_some()
        );
        Ok(())
    }

    #[test]
    fn every_admin_message_has_a_proto_name() -> Result<(), JsonError> {
        let pool = descriptor_pool()?;
        let in_pool: Vec<String> = pool
            .all_messages()
            .map(|m| m.full_name().to_string())
            .filter(|n| n.starts_with("tollgate.admin.v1."))
            .collect();
        for name in ALL_NAMES {
            assert!(in_pool.iter().any(|n| n == name), "{name} not in pool");
        }
        assert_eq!(in_pool.len(), ALL_NAMES.len(), "a message lacks ProtoName");
        Ok(())
    }

    #[test]
    fn ai_llm_is_proto3_json() -> Result<(), JsonError> {
        let v = to_json(&sample())?;
        assert_eq!(v["aiType"], json!("OPENAI"));
        assert_eq!(v["workspaceId"], json!("ws_1"));
        assert_eq!(v["createdAt"], json!("2023-11-14T22:13:20Z"));
        assert_eq!(v["version"], json!("3"));
        assert_eq!(v["secretSet"], json!(true));
        assert_eq!(v["validationSuccess"], json!(false));
        // Defaults are shown; unset message fields are not.
        assert_eq!(v["models"], json!([]));
        assert_eq!(v["credentialMode"], json!("CREDENTIAL_MODE_UNSPECIFIED"));
        assert!(v.get("lastValidatedAt").is_none());
        assert!(v.get("ai_type").is_none());
        Ok(())
    }

    #[test]
    fn list_is_an_array() -> Result<(), JsonError> {
        let v = to_json_array(&[sample(), sample()])?;
        assert_eq!(v.as_array().map(Vec::len), Some(2));
        assert_eq!(to_json_array::<proto::AiLlm>(&[])?, json!([]));
        Ok(())
    }

    #[test]
    fn direct_serialization_keeps_declaration_order() -> Result<(), JsonError> {
        let text = serde_json::to_string(&proto_json(&sample())?).unwrap_or_default();
        let id = text.find("\"id\"");
        let ai_type = text.find("\"aiType\"");
        let version = text.find("\"version\"");
        assert!(id < ai_type && ai_type < version, "{text}");
        Ok(())
    }
}
