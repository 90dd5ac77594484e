//! One typed async method per RPC of every admin service, named like the RPC.

use crate::client::Client;
use crate::error::Error;
use crate::proto;

macro_rules! rpcs {
    ($($svc:ident . $method:ident($req:ident) -> $resp:ident;)*) => {
        impl Client {
            $(
                #[doc = concat!("Calls `", stringify!($method), "` (`", stringify!($req), "` → `", stringify!($resp), "`).")]
                pub async fn $method(&self, request: proto::$req) -> Result<proto::$resp, Error> {
                    self.$svc()
                        .$method(request)
                        .await
                        .map(tonic::Response::into_inner)
                        .map_err(|s| self.map_err(s))
                }
            )*
        }
    };
}

rpcs! {
    llms.create_ai_llm(CreateAiLlmRequest) -> CreateAiLlmResponse;
    llms.list_ai_llms(ListAiLlmsRequest) -> ListAiLlmsResponse;
    llms.list_available_ai_llms(ListAvailableAiLlmsRequest) -> ListAiLlmsResponse;
    llms.get_ai_llm(GetAiLlmRequest) -> AiLlm;
    llms.update_ai_llm(UpdateAiLlmRequest) -> UpdateAiLlmResponse;
    llms.delete_ai_llm(DeleteAiLlmRequest) -> DeleteAiLlmResponse;
    llms.validate_ai_llm(ValidateAiLlmRequest) -> ValidateAiLlmResponse;
    llms.get_ai_llm_stats(GetAiLlmStatsRequest) -> GetAiLlmStatsResponse;

    workspaces.create_workspace(CreateWorkspaceRequest) -> Workspace;
    workspaces.list_workspaces(ListWorkspacesRequest) -> ListWorkspacesResponse;
    workspaces.get_workspace(GetWorkspaceRequest) -> Workspace;
    workspaces.delete_workspace(DeleteWorkspaceRequest) -> DeleteWorkspaceResponse;

    repositories.create_repository(CreateRepositoryRequest) -> Repository;
    repositories.list_repositories(ListRepositoriesRequest) -> ListRepositoriesResponse;
    repositories.get_repository(GetRepositoryRequest) -> Repository;
    repositories.delete_repository(DeleteRepositoryRequest) -> DeleteRepositoryResponse;
    repositories.attach_ai_llm(AttachAiLlmRequest) -> Repository;
    repositories.detach_ai_llm(DetachAiLlmRequest) -> Repository;
    repositories.set_route(SetRouteRequest) -> Repository;
    repositories.delete_route(DeleteRouteRequest) -> Repository;

    api_keys.create_api_key(CreateApiKeyRequest) -> CreateApiKeyResponse;
    api_keys.list_api_keys(ListApiKeysRequest) -> ListApiKeysResponse;
    api_keys.revoke_api_key(RevokeApiKeyRequest) -> ApiKey;
    api_keys.rename_api_key(RenameApiKeyRequest) -> ApiKey;

    policies.create_policy(CreatePolicyRequest) -> Policy;
    policies.list_policies(ListPoliciesRequest) -> ListPoliciesResponse;
    policies.get_policy(GetPolicyRequest) -> Policy;
    policies.update_policy(UpdatePolicyRequest) -> Policy;
    policies.delete_policy(DeletePolicyRequest) -> DeletePolicyResponse;
    policies.list_policy_violations(ListPolicyViolationsRequest) -> ListPolicyViolationsResponse;
    policies.list_alerts(ListPolicyViolationsRequest) -> ListPolicyViolationsResponse;
    policies.test_policy(TestPolicyRequest) -> TestPolicyResponse;
    policies.review_policy(ReviewPolicyRequest) -> PolicyReview;
    policies.recommend_policies(RecommendPoliciesRequest) -> RecommendPoliciesResponse;

    tokens.create_admin_token(CreateAdminTokenRequest) -> CreateAdminTokenResponse;
    tokens.list_admin_tokens(ListAdminTokensRequest) -> ListAdminTokensResponse;
    tokens.revoke_admin_token(RevokeAdminTokenRequest) -> AdminToken;
    tokens.who_am_i(WhoAmIRequest) -> AdminToken;

    stats.get_usage(GetUsageRequest) -> GetUsageResponse;
}
