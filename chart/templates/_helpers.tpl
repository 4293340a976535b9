{{/*
Names. With release "leviathan" every name below is the one the operators'
runbook uses, so keep them in step with docs/RUNBOOK.md.
*/}}

{{- define "leviathan.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every object name: the release name, unless it lacks the chart name. */}}
{{- define "leviathan.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "leviathan.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "leviathan.configMapName" -}}
{{- printf "%s-autonomy-config" (include "leviathan.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The scheduler's settings (tasks, guardrails, worker): a ConfigMap of their own, guarded as a release. */}}
{{- define "leviathan.settingsConfigMapName" -}}
{{- printf "%s-scheduler-config" (include "leviathan.fullname" . | trunc 46 | trimSuffix "-") -}}
{{- end -}}

{{- define "leviathan.controlPlane.fullname" -}}
{{- printf "%s-control-plane" (include "leviathan.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
`<prefix><suffix>` in at most `max` characters: a long prefix is cut (and a trailing "-" dropped) so that
the suffix stays, the way Bitnami's charts trunc to 63 (52 for a CronJob); names of release "leviathan"
never reach the cap. Usage: include "leviathan.shortName" (dict "prefix" $p "suffix" "-worker" "max" 63)
*/}}
{{- define "leviathan.shortName" -}}
{{- $room := sub (int .max) (len .suffix) | int -}}
{{- if gt $room 0 -}}
{{- printf "%s%s" (.prefix | trunc $room | trimSuffix "-") .suffix | trunc (int .max) | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s%s" .prefix .suffix | trunc (int .max) | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* CronJob names are capped at 52 characters: the controller appends 11 to name each Job. */}}
{{- define "leviathan.scheduler.fullname" -}}
{{- include "leviathan.shortName" (dict "prefix" (include "leviathan.fullname" .) "suffix" (printf "-%s-scheduler" .Values.environment) "max" 52) -}}
{{- end -}}

{{/* A label value too (`app=`), so at most 63 characters. */}}
{{- define "leviathan.worker.app" -}}
{{- include "leviathan.shortName" (dict "prefix" (include "leviathan.fullname" .) "suffix" "-worker" "max" 63) -}}
{{- end -}}

{{- define "leviathan.secretName" -}}
{{- default (printf "%s-secrets" (include "leviathan.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "leviathan.secretKey" -}}
{{- if .Values.auth.existingSecret -}}
{{- .Values.auth.existingSecretKey -}}
{{- else -}}
LEVIATHAN_CONTROL_PLANE_TOKEN
{{- end -}}
{{- end -}}

{{/* Naming no ServiceAccount while creating none would run the pods as `default`: refused. */}}
{{- define "leviathan.controlPlane.serviceAccountName" -}}
{{- $sa := .Values.controlPlane.serviceAccount -}}
{{- if not (or $sa.create $sa.name) -}}
{{- fail "controlPlane.serviceAccount.create=false needs controlPlane.serviceAccount.name: the ServiceAccount to run as" -}}
{{- end -}}
{{- default (include "leviathan.controlPlane.fullname" .) $sa.name -}}
{{- end -}}

{{- define "leviathan.scheduler.serviceAccountName" -}}
{{- $sa := .Values.scheduler.serviceAccount -}}
{{- if not (or $sa.create $sa.name) -}}
{{- fail "scheduler.serviceAccount.create=false needs scheduler.serviceAccount.name: the ServiceAccount the scheduler runs as (with rbac.create it is bound to the chart's Role; without, it needs list and create on jobs.batch)" -}}
{{- end -}}
{{- default (printf "%s-scheduler" (include "leviathan.fullname" .)) $sa.name -}}
{{- end -}}

{{/* Paths inside the pods. */}}
{{- define "leviathan.configDir" -}}/etc/leviathan/autonomy{{- end -}}
{{- define "leviathan.configFile" -}}{{ .Values.environment }}.yaml{{- end -}}
{{- define "leviathan.configPath" -}}{{ include "leviathan.configDir" . }}/{{ include "leviathan.configFile" . }}{{- end -}}
{{- define "leviathan.settingsDir" -}}/etc/leviathan/scheduler{{- end -}}
{{- define "leviathan.settingsFile" -}}scheduler.yaml{{- end -}}
{{- define "leviathan.settingsPath" -}}{{ include "leviathan.settingsDir" . }}/{{ include "leviathan.settingsFile" . }}{{- end -}}
{{- define "leviathan.tokenDir" -}}/etc/leviathan/token{{- end -}}
{{- define "leviathan.tokenPath" -}}{{ include "leviathan.tokenDir" . }}/control-plane-token{{- end -}}

{{/*
Labels. Selectors use only the stable ones (name, instance, component), so a
chart upgrade never changes an immutable selector. The runbook's `app=` label
is on the pods but never in a selector.
*/}}
{{- define "leviathan.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "leviathan.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: leviathan
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "leviathan.selectorLabels" -}}
app.kubernetes.io/name: {{ include "leviathan.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Usage: include "leviathan.componentLabels" (dict "root" $ "component" "control-plane") */}}
{{- define "leviathan.componentLabels" -}}
{{ include "leviathan.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "leviathan.componentSelectorLabels" -}}
{{ include "leviathan.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Usage: include "leviathan.image" (dict "image" .Values.controlPlane.image "root" $) */}}
{{- define "leviathan.image" -}}
{{- $tag := default .root.Chart.AppVersion .image.tag -}}
{{- $repository := include "leviathan.imageRepository" (dict "repository" .image.repository "root" .root) -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}
{{- end -}}

{{/* imagePullSecrets and global.imagePullSecrets, names or {name: ...} (_overrides.tpl). */}}
{{- define "leviathan.imagePullSecrets" -}}
{{- with (include "leviathan.imagePullSecretNames" . | fromYamlArray) -}}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* Usage: include "leviathan.podSecurityContext" .Values.controlPlane */}}
{{- define "leviathan.podSecurityContext" -}}
{{- if .podSecurityContext.enabled -}}
securityContext:
  runAsNonRoot: true
  fsGroup: {{ .podSecurityContext.fsGroup }}
  seccompProfile:
    type: RuntimeDefault
{{- end -}}
{{- end -}}

{{- define "leviathan.containerSecurityContext" -}}
{{- if .containerSecurityContext.enabled -}}
securityContext:
  runAsNonRoot: true
  runAsUser: {{ .containerSecurityContext.runAsUser }}
  runAsGroup: {{ .containerSecurityContext.runAsGroup }}
  readOnlyRootFilesystem: true
  allowPrivilegeEscalation: false
  privileged: false
  capabilities:
    drop:
      - ALL
  seccompProfile:
    type: RuntimeDefault
{{- end -}}
{{- end -}}

{{/* Scheduling constraints shared by the control-plane and scheduler pods. */}}
{{- define "leviathan.podPlacement" -}}
{{- $placement := dict -}}
{{- with .nodeSelector }}{{ $_ := set $placement "nodeSelector" . }}{{ end -}}
{{- with .tolerations }}{{ $_ := set $placement "tolerations" . }}{{ end -}}
{{- with .affinity }}{{ $_ := set $placement "affinity" . }}{{ end -}}
{{- if $placement }}{{ toYaml $placement }}{{ end -}}
{{- end -}}

{{/*
Control-plane spreading, matched by the chart's own selector labels so that it
follows the release name and nameOverride. Usage: include "leviathan.controlPlane.spreading" $
*/}}
{{- define "leviathan.controlPlane.spreading" -}}
{{- $cp := .Values.controlPlane -}}
{{- $selector := dict "matchLabels" (include "leviathan.componentSelectorLabels" (dict "root" . "component" "control-plane") | fromYaml) -}}
{{- if and $cp.podAntiAffinityPreset (not $cp.affinity) -}}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" $selector -}}
{{- $anti := dict -}}
{{- if eq $cp.podAntiAffinityPreset "hard" -}}
{{- $_ := set $anti "requiredDuringSchedulingIgnoredDuringExecution" (list $term) -}}
{{- else -}}
{{- $_ := set $anti "preferredDuringSchedulingIgnoredDuringExecution" (list (dict "weight" 100 "podAffinityTerm" $term)) -}}
{{- end }}
affinity:
  podAntiAffinity:
    {{- toYaml $anti | nindent 4 }}
{{- end }}
{{- with $cp.topologySpreadKeys }}
topologySpreadConstraints:
  {{- range . }}
  - maxSkew: 1
    topologyKey: {{ . }}
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      {{- toYaml $selector | nindent 6 }}
    matchLabelKeys:
      - pod-template-hash
  {{- end }}
{{- end }}
{{- end -}}

{{- define "leviathan.testResources" -}}
requests:
  cpu: 10m
  memory: 32Mi
limits:
  cpu: 200m
  memory: 128Mi
{{- end -}}

{{/* Cluster-scoped, so the namespace is part of the name: one policy per release. */}}
{{- define "leviathan.admissionPolicyName" -}}
{{- printf "%s-worker-switch.%s" (include "leviathan.fullname" .) .Release.Namespace | trunc 253 | trimSuffix "-" -}}
{{- end -}}

{{/* The release-restriction policy is cluster-scoped: the namespace keeps its name unique. */}}
{{- define "leviathan.releasePolicyName" -}}
{{- printf "%s-%s-release" (include "leviathan.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/* Set by the API server (identity-stamp.yaml): who last turned autonomy on or off. */}}
{{- define "leviathan.switchedByAnnotation" -}}autonomy.leviathan.io/switched-by{{- end -}}

{{/*
The apiVersion of MutatingAdmissionPolicy (and its binding) that the API server serves, v1
preferred over v1beta1; empty where it serves neither. identity-stamp.yaml renders the stamp
policy only when it is set, and the control plane reports switched_by as verified only then.
*/}}
{{- define "leviathan.stampPolicyApiVersion" -}}
{{- if .Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy" -}}
admissionregistration.k8s.io/v1
{{- else if .Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy" -}}
admissionregistration.k8s.io/v1beta1
{{- end -}}
{{- end -}}

{{/*
The API server's addresses for the control plane's egress rule, as a YAML list of CIDRs:
networkPolicy.apiServer.cidrs; else, with networkPolicy.apiServer.lookup, the addresses of
the `kubernetes` EndpointSlice in `default` (each a /32, or /128 for IPv6); else [] (the
rule then allows the ports to any address). lookup finds nothing under helm template.
*/}}
{{- define "leviathan.apiServerCidrs" -}}
{{- $cidrs := .Values.networkPolicy.apiServer.cidrs | default list -}}
{{- if and (not $cidrs) .Values.networkPolicy.apiServer.lookup -}}
{{- $slice := lookup "discovery.k8s.io/v1" "EndpointSlice" "default" "kubernetes" -}}
{{- range (dig "endpoints" list ($slice | default dict)) -}}
{{- range .addresses -}}
{{- $cidrs = append $cidrs (printf "%s/%s" . (ternary "128" "32" (contains ":" .))) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml (uniq $cidrs) -}}
{{- end -}}

{{/*
The switch grammar (files/switch-grammar.json, generated from leviathan_config/switch.py):
the named pattern, anchored for RE2 (CEL's matches() and Go's regexp alike).
  include "leviathan.grammar" (list . "on")
*/}}
{{- define "leviathan.grammar" -}}
{{- $root := index . 0 -}}
{{- $grammar := $root.Files.Get "files/switch-grammar.json" | fromJson -}}
{{- printf "^(?:%s)$" (index $grammar.patterns (index . 1)) -}}
{{- end -}}

{{- define "leviathan.grammar.maxBytes" -}}
{{- (.Files.Get "files/switch-grammar.json" | fromJson).maxBytes | int -}}
{{- end -}}

{{/*
CEL: the text of the switch file in object OBJ (object, oldObject or params), "" when absent.
A text in binaryData, or anything not a string, is no text: never "on".
  include "leviathan.cel.switchText" (list . "object")
*/}}
{{- define "leviathan.cel.switchText" -}}
{{- $key := include "leviathan.configFile" (index . 0) | quote -}}
{{- $obj := index . 1 -}}
{{- printf "has(%s.data) && %s in %s.data ? string(%s.data[%s]) : \"\"" $obj $key $obj $obj $key -}}
{{- end -}}

{{/*
CEL: TEXT (a CEL expression) is the switch file of a usable NAME ("on", "onWithReason", "grammar").
  include "leviathan.cel.switchIs" (list . "variables.text" "on")
*/}}
{{- define "leviathan.cel.switchIs" -}}
{{- $root := index . 0 -}}
{{- printf "(%s.size() <= %s && %s.matches(%s))" (index . 1) (include "leviathan.grammar.maxBytes" $root) (index . 1) (include "leviathan.grammar" (list $root (index . 2)) | toJson) -}}
{{- end -}}

{{/* "true" when autonomy.releasers names anyone: then releasing is restricted. */}}
{{- define "leviathan.releasers.any" -}}
{{- $r := .Values.autonomy.releasers | default dict -}}
{{- if or $r.users $r.groups $r.serviceAccounts -}}true{{- end -}}
{{- end -}}

{{/* CEL: the requester is one of autonomy.releasers (users, groups, ServiceAccounts). */}}
{{- define "leviathan.cel.releaser" -}}
{{- $r := .Values.autonomy.releasers | default dict -}}
{{- $usernames := $r.users | default list -}}
{{- range ($r.serviceAccounts | default list) -}}
{{- $usernames = append $usernames (printf "system:serviceaccount:%s" (replace "/" ":" .)) -}}
{{- end -}}
{{- printf "(request.userInfo.username in %s || request.userInfo.groups.exists(g, g in %s))" ($usernames | toJson) ($r.groups | default list | toJson) -}}
{{- end -}}

{{/* Who the releasers are, for refusal messages. */}}
{{- define "leviathan.releasers.sentence" -}}
{{- $r := .Values.autonomy.releasers | default dict -}}
{{- $who := list -}}
{{- with $r.users }}{{ $who = append $who (printf "users %s" (join ", " .)) }}{{ end -}}
{{- with $r.groups }}{{ $who = append $who (printf "groups %s" (join ", " .)) }}{{ end -}}
{{- with $r.serviceAccounts }}{{ $who = append $who (printf "ServiceAccounts %s" (join ", " .)) }}{{ end -}}
{{- printf "only the releasers in the chart value autonomy.releasers may do that (%s); ask one of them, who can also add you to that value with helm upgrade. Turning autonomy off and suspending stay open to you." (join "; " $who) -}}
{{- end -}}

{{/*
Monitoring (monitoring.yaml, NOTES.txt, the NetworkPolicy). Usage:
include "leviathan.monitoring.rendered" (dict "root" $ "kind" "ServiceMonitor"): "true" when that
object is enabled and its CRD is served (or `force`); "" otherwise.
*/}}
{{- define "leviathan.monitoring.rendered" -}}
{{- $values := get (dict "ServiceMonitor" .root.Values.metrics.serviceMonitor "PodMonitor" .root.Values.metrics.podMonitor "PrometheusRule" .root.Values.metrics.prometheusRule) .kind -}}
{{- if and $values.enabled (or $values.force (.root.Capabilities.APIVersions.Has (printf "monitoring.coreos.com/v1/%s" .kind))) -}}
true
{{- end -}}
{{- end -}}

{{/*
The labels Prometheus puts on the control plane's series, as a dict: selector (PromQL matchers), by
(the aggregation labels) and labels (the same as a map). A ServiceMonitor's targets carry the Service
name in `service`; a PodMonitor's (without a ServiceMonitor) carry `job="<namespace>/<podmonitor>"`.
*/}}
{{- define "leviathan.metrics.scope" -}}
{{- $labels := dict "namespace" .Release.Namespace -}}
{{- if and .Values.metrics.podMonitor.enabled (not .Values.metrics.serviceMonitor.enabled) -}}
{{- $_ := set $labels "job" (printf "%s/%s" (default .Release.Namespace .Values.metrics.podMonitor.namespace) (include "leviathan.controlPlane.fullname" .)) -}}
{{- else -}}
{{- $_ := set $labels "service" (include "leviathan.controlPlane.fullname" .) -}}
{{- end -}}
{{- $matchers := list -}}
{{- range $k := keys $labels | sortAlpha -}}
{{- $matchers = append $matchers (printf "%s=%q" $k (get $labels $k)) -}}
{{- end -}}
{{- toYaml (dict "labels" $labels "selector" (join ", " $matchers) "by" (keys $labels | sortAlpha | join ", ")) -}}
{{- end -}}

{{/* A ServiceMonitor endpoint's or PodMonitor podMetricsEndpoint's optional fields. Usage: include ... .Values.metrics.serviceMonitor */}}
{{- define "leviathan.metrics.endpoint" -}}
interval: {{ .interval }}
{{- with .scrapeTimeout }}
scrapeTimeout: {{ . }}
{{- end }}
{{- if .honorLabels }}
honorLabels: true
{{- end }}
{{- with .relabelings }}
relabelings:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .metricRelabelings }}
metricRelabelings:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The NetworkPolicy peer metrics.scrapeFrom names (both selectors in one peer: pods X in namespaces Y). */}}
{{- define "leviathan.metrics.scrapePeer" -}}
{{- $from := .Values.metrics.scrapeFrom -}}
namespaceSelector:
  {{- toYaml ($from.namespaceSelector | default dict) | nindent 2 }}
podSelector:
  {{- toYaml ($from.podSelector | default dict) | nindent 2 }}
{{- end -}}
