{{/* Names, labels and the values computed in one place. */}}

{{- define "tollgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-based prefix of every object; short enough for the longest suffix used. */}}
{{- define "tollgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "tollgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tollgate.labels" -}}
helm.sh/chart: {{ include "tollgate.chart" . }}
app.kubernetes.io/name: {{ include "tollgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tollgate
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: include with (dict "ctx" $ "component" "data-plane"). */}}
{{- define "tollgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tollgate.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "tollgate.componentLabels" -}}
{{ include "tollgate.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "tollgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tollgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Image of a component: include with (dict "ctx" $ "image" .Values.controlPlane.image). */}}
{{- define "tollgate.image" -}}
{{- $g := .ctx.Values.image }}
{{- $repo := default $g.repository .image.repository }}
{{- $tag := default (default .ctx.Chart.AppVersion $g.tag) .image.tag }}
{{- $digest := default $g.digest .image.digest }}
{{- if $digest }}
{{- printf "%s@%s" $repo $digest }}
{{- else }}
{{- printf "%s:%s" $repo $tag }}
{{- end }}
{{- end }}

{{- define "tollgate.adminServiceName" -}}{{ include "tollgate.fullname" . }}-admin{{- end }}
{{- define "tollgate.syncServiceName" -}}{{ include "tollgate.fullname" . }}-sync{{- end }}
{{- define "tollgate.gatewayServiceName" -}}{{ include "tollgate.fullname" . }}-gateway{{- end }}
{{- define "tollgate.metricsServiceName" -}}{{ include "tollgate.fullname" . }}-data-plane-metrics{{- end }}
{{- define "tollgate.etcdName" -}}{{ include "tollgate.fullname" . }}-etcd{{- end }}
{{- define "tollgate.etcdHeadlessName" -}}{{ include "tollgate.fullname" . }}-etcd-headless{{- end }}

{{/* The Secret holding the master key(s) and the bootstrap token. */}}
{{- define "tollgate.secretName" -}}
{{- default (printf "%s-secrets" (include "tollgate.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{/* Secrets with the sync mTLS material (tls.crt, tls.key, ca.crt). */}}
{{- define "tollgate.controlPlaneTlsSecret" -}}
{{- if eq .Values.sync.tls.mode "existingSecret" }}
{{- .Values.sync.tls.existingSecret.controlPlane }}
{{- else }}
{{- include "tollgate.fullname" . }}-control-plane-sync-tls
{{- end }}
{{- end }}
{{- define "tollgate.dataPlaneTlsSecret" -}}
{{- if eq .Values.sync.tls.mode "existingSecret" }}
{{- .Values.sync.tls.existingSecret.dataPlane }}
{{- else }}
{{- include "tollgate.fullname" . }}-data-plane-sync-tls
{{- end }}
{{- end }}

{{/* The Secret holding the sync token (key .Values.sync.token.key). */}}
{{- define "tollgate.syncTokenSecret" -}}
{{- default (printf "%s-sync-token" (include "tollgate.fullname" .)) .Values.sync.token.existingSecret }}
{{- end }}

{{/* The sync token as the binaries read it: a file of the mounted Secret. */}}
{{- define "tollgate.syncTokenFile" -}}
/etc/tollgate/sync-token/{{ .Values.sync.token.key }}
{{- end }}

{{/* DNS names the control plane's sync certificate must carry. */}}
{{- define "tollgate.syncDnsNames" -}}
{{- $svc := include "tollgate.syncServiceName" . }}
{{- $ns := .Release.Namespace }}
{{- $names := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.clusterDomain) }}
{{- concat $names .Values.sync.tls.extraDnsNames | uniq | toJson }}
{{- end }}

{{/* The URL data planes dial: the sync Service, unless overridden. */}}
{{- define "tollgate.syncUrl" -}}
{{- if .Values.dataPlane.controlPlaneUrl }}
{{- .Values.dataPlane.controlPlaneUrl }}
{{- else }}
{{- printf "https://%s.%s.svc:%d" (include "tollgate.syncServiceName" .) .Release.Namespace (int .Values.controlPlane.service.syncPort) }}
{{- end }}
{{- end }}

{{/* Host of the i-th bundled etcd member (stable through the headless Service). */}}
{{- define "tollgate.etcdMemberHost" -}}
{{- printf "%s-%d.%s.%s.svc.%s" (include "tollgate.etcdName" .ctx) (int .i) (include "tollgate.etcdHeadlessName" .ctx) .ctx.Release.Namespace .ctx.Values.clusterDomain }}
{{- end }}

{{/* The --store value of the control plane. */}}
{{- define "tollgate.storeUrl" -}}
{{- if eq .Values.etcd.mode "bundled" }}
{{- $hosts := list }}
{{- range $i, $_ := until (int .Values.etcd.bundled.replicas) }}
{{- $hosts = append $hosts (printf "%s:2379" (include "tollgate.etcdMemberHost" (dict "ctx" $ "i" $i))) }}
{{- end }}
{{- printf "etcd://%s" (join "," $hosts) }}
{{- else }}
{{- $hosts := list }}
{{- range .Values.etcd.external.endpoints }}
{{- $hosts = append $hosts . }}
{{- end }}
{{- printf "etcd://%s" (join "," $hosts) }}
{{- end }}
{{- end }}

{{/* --initial-cluster of the bundled etcd, from the headless Service names. */}}
{{- define "tollgate.etcdInitialCluster" -}}
{{- $members := list }}
{{- range $i, $_ := until (int .Values.etcd.bundled.replicas) }}
{{- $members = append $members (printf "%s-%d=http://%s:2380" (include "tollgate.etcdName" $) $i (include "tollgate.etcdMemberHost" (dict "ctx" $ "i" $i))) }}
{{- end }}
{{- join "," $members }}
{{- end }}

{{/* Pod and container security: non-root, read-only root, no capabilities. */}}
{{- define "tollgate.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "tollgate.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Checks across values that the schema cannot express well; fail with what to change. */}}
{{- define "tollgate.validate" -}}
{{- if and (eq .Values.etcd.mode "external") (not .Values.etcd.external.endpoints) }}
{{- fail "etcd.mode is \"external\" but etcd.external.endpoints is empty: list your etcd members as host:port" }}
{{- end }}
{{- if and (eq .Values.etcd.mode "external") .Values.etcd.external.tls.enabled (not .Values.etcd.external.tls.existingSecret) }}
{{- fail "etcd.external.tls.enabled needs etcd.external.tls.existingSecret: a Secret with ca.crt, tls.crt and tls.key" }}
{{- end }}
{{- if not .Values.controlPlane.enabled }}
{{- if not .Values.dataPlane.controlPlaneUrl }}
{{- fail "controlPlane.enabled is false: set dataPlane.controlPlaneUrl to the sync URL of the release that runs the control plane (https://<release>-tollgate-sync.<namespace>.svc:7071)" }}
{{- end }}
{{- if not (and (eq .Values.sync.tls.mode "existingSecret") .Values.sync.tls.existingSecret.dataPlane) }}
{{- fail "controlPlane.enabled is false: set sync.tls.mode to existingSecret and sync.tls.existingSecret.dataPlane to a copy of the control plane release's data-plane sync Secret (tls.crt, tls.key, ca.crt): certificates this release generated would not be trusted" }}
{{- end }}
{{- if and .Values.sync.token.enabled (not .Values.sync.token.existingSecret) }}
{{- fail "controlPlane.enabled is false: sync.token.enabled needs sync.token.existingSecret, a copy of the control plane release's sync token Secret" }}
{{- end }}
{{- else if eq .Values.sync.tls.mode "existingSecret" }}
{{- if not (and .Values.sync.tls.existingSecret.controlPlane .Values.sync.tls.existingSecret.dataPlane) }}
{{- fail "sync.tls.mode is \"existingSecret\": set both sync.tls.existingSecret.controlPlane and sync.tls.existingSecret.dataPlane (Secrets with tls.crt, tls.key and ca.crt)" }}
{{- end }}
{{- end }}
{{- if and .Values.egressProxy.url .Values.egressProxy.existingSecret }}
{{- fail "egressProxy: set url or existingSecret, not both" }}
{{- end }}
{{- if and .Values.dataPlane.autoscaling.enabled (lt (int .Values.dataPlane.autoscaling.maxReplicas) (int .Values.dataPlane.autoscaling.minReplicas)) }}
{{- fail "dataPlane.autoscaling.maxReplicas must be at least dataPlane.autoscaling.minReplicas" }}
{{- end }}
{{- end }}

{{/*
The provider CA bundle (upstreamCA), for both deployments: the flag, the mount and the
volume; each renders nothing without upstreamCA.configMap.
*/}}
{{- define "tollgate.upstreamCAArg" -}}
{{- if .Values.upstreamCA.configMap }}
- --upstream-ca-file=/etc/tollgate/upstream-ca/{{ .Values.upstreamCA.key }}
{{- end }}
{{- end }}

{{- define "tollgate.upstreamCAMount" -}}
{{- if .Values.upstreamCA.configMap }}
- name: upstream-ca
  mountPath: /etc/tollgate/upstream-ca
  readOnly: true
{{- end }}
{{- end }}

{{- define "tollgate.upstreamCAVolume" -}}
{{- if .Values.upstreamCA.configMap }}
- name: upstream-ca
  configMap:
    name: {{ .Values.upstreamCA.configMap }}
    items:
      - key: {{ .Values.upstreamCA.key }}
        path: {{ .Values.upstreamCA.key }}
{{- end }}
{{- end }}

{{/*
The egress proxy's environment (egressProxy), for both deployments; nothing when unset.
*/}}
{{- define "tollgate.egressProxyEnv" -}}
{{- $p := .Values.egressProxy }}
{{- range $name := list "HTTPS_PROXY" "HTTP_PROXY" }}
{{- if $p.url }}
- name: {{ $name }}
  value: {{ $p.url | quote }}
{{- else if $p.existingSecret }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $p.existingSecret }}
      key: {{ $p.secretKey }}
{{- end }}
{{- end }}
{{- if and $p.noProxy (or $p.url $p.existingSecret) }}
- name: NO_PROXY
  value: {{ $p.noProxy | quote }}
{{- end }}
{{- end }}
