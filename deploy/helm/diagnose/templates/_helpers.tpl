{{/* Names ------------------------------------------------------------------------------ */}}

{{- define "diagnose.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name; components append "-api", "-worker", "-vllm" (hence 52). */}}
{{- define "diagnose.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "diagnose.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "diagnose.labels" -}}
helm.sh/chart: {{ include "diagnose.chart" . }}
app.kubernetes.io/name: {{ include "diagnose.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: diagnose
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "api"). */}}
{{- define "diagnose.selectorLabels" -}}
app.kubernetes.io/name: {{ include "diagnose.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "diagnose.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "diagnose.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The second ServiceAccount, holding the write rules; only with actions.enabled. No pod
runs as it: the agent reads its token from a mounted Secret, as write credentials of its own. */}}
{{- define "diagnose.actionsServiceAccountName" -}}
{{- printf "%s-actions" (include "diagnose.fullname" .) -}}
{{- end -}}

{{- define "diagnose.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "diagnose.playbooksConfigMap" -}}
{{- default (printf "%s-playbooks" (include "diagnose.fullname" .)) .Values.playbooks.existingConfigMap -}}
{{- end -}}

{{- define "diagnose.vllmServedName" -}}
{{- default .Values.vllm.model .Values.vllm.servedModelName -}}
{{- end -}}

{{/* Cross-field rules JSON schema cannot say clearly; called by every workload. */}}
{{- define "diagnose.validate" -}}
{{- if and .Values.vllm.enabled .Values.llm.baseUrl -}}
{{- fail "llm.baseUrl and vllm.enabled are both set: the agent would ignore one of them. Use the chart's vLLM (leave llm.baseUrl empty) or your own endpoint (vllm.enabled=false)." -}}
{{- end -}}
{{- if and .Values.actions.enabled (not .Values.rbac.create) -}}
{{- fail "actions.enabled needs rbac.create=true: the write rules are granted by the chart's Role bindings." -}}
{{- end -}}
{{- if and (eq .Values.vllm.weights.source "image") (not .Values.vllm.weights.image.reference) .Values.vllm.enabled -}}
{{- fail "vllm.weights.source=image needs vllm.weights.image.reference: the OCI image that holds the model directory." -}}
{{- end -}}
{{- end -}}

{{/* A secretKeyRef env entry when the Secret is named: (dict "env" "NAME" "ref" .Values.x). */}}
{{- define "diagnose.secretEnv" -}}
{{- if .ref.name }}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .ref.name | quote }}
      key: {{ .ref.key | quote }}
{{- end }}
{{- end -}}

{{/* A plain env entry when the value is not empty: (dict "env" "NAME" "value" x). */}}
{{- define "diagnose.plainEnv" -}}
{{- if or (kindIs "bool" .value) (kindIs "float64" .value) (kindIs "int" .value) (kindIs "int64" .value) .value }}
- name: {{ .env }}
  value: {{ .value | toString | quote }}
{{- end }}
{{- end -}}

{{/* "a=b,c=d" from a map, keys sorted, as DIAGNOSE_SERVICE_MAP expects. */}}
{{- define "diagnose.pairs" -}}
{{- $pairs := list -}}
{{- range $key := keys . | sortAlpha -}}
{{- $pairs = append $pairs (printf "%s=%s" $key (index $ $key)) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* Where the image keeps the probe catalogue (the Dockerfile links the package's
playbooks/ folder here); the chart mounts the playbooks ConfigMap over it. */}}
{{- define "diagnose.playbooksPath" -}}
/etc/diagnose/playbooks
{{- end -}}

{{/* The DIAGNOSE_* environment of an agent container: (dict "root" $ "component" "api").
What authenticates inbound requests (webhook secrets, API tokens) goes to the API only. */}}
{{- define "diagnose.env" -}}
{{- $api := eq .component "api" -}}
{{- $mcp := eq .component "mcp" -}}
{{- with .root -}}
- name: DIAGNOSE_STATE_DIR
  value: /var/lib/diagnose
- name: TMPDIR
  value: /tmp
- name: HOME
  value: /tmp
{{- include "diagnose.secretEnv" (dict "env" "DIAGNOSE_DATABASE_URL" "ref" .Values.database.dsnSecret) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_PROMETHEUS_URL" "value" .Values.prometheus.url) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_PROMETHEUS_TIMEOUT_S" "value" .Values.prometheus.timeoutSeconds) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_KUBERNETES_ENABLED" "value" .Values.kubernetes.enabled) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_KUBERNETES_TIMEOUT_S" "value" .Values.kubernetes.timeoutSeconds) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_TEMPO_URL" "value" .Values.traces.tempoUrl) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_JAEGER_URL" "value" .Values.traces.jaegerUrl) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_TRACES_TENANT" "value" .Values.traces.tenant) }}
{{- include "diagnose.secretEnv" (dict "env" "DIAGNOSE_TRACES_TOKEN" "ref" .Values.traces.tokenSecret) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_LOGS_ENABLED" "value" .Values.logs.enabled) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_LOKI_URL" "value" .Values.logs.lokiUrl) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_LOKI_TENANT" "value" .Values.logs.lokiTenant) }}
{{- include "diagnose.secretEnv" (dict "env" "DIAGNOSE_LOKI_TOKEN" "ref" .Values.logs.lokiTokenSecret) }}
{{- include "diagnose.secretEnv" (dict "env" "DIAGNOSE_POSTGRES_URL" "ref" .Values.postgresProbes.dsnSecret) }}
{{- if and (not $api) .Values.repositories.items }}
- name: DIAGNOSE_REPOSITORIES
  value: {{ include "diagnose.repositoryClones" . | quote }}
{{- end }}
{{- if and $mcp .Values.mcp.tokensSecret.name }}
- name: DIAGNOSE_API_TOKENS_FILE
  value: /etc/diagnose/mcp-tokens/{{ .Values.mcp.tokensSecret.key }}
{{- end }}
{{- if $api }}
{{- include "diagnose.secretEnv" (dict "env" "DIAGNOSE_PAGERDUTY_WEBHOOK_SECRET" "ref" .Values.pagerduty.webhookSecret) }}
{{- include "diagnose.secretEnv" (dict "env" "DIAGNOSE_ALERTMANAGER_TOKEN" "ref" .Values.alertmanager.tokenSecret) }}
{{- if .Values.approvals.tokensSecret.name }}
- name: DIAGNOSE_API_TOKENS_FILE
  value: /etc/diagnose/api-tokens/{{ .Values.approvals.tokensSecret.key }}
{{- end }}
{{- end }}
{{- include "diagnose.secretEnv" (dict "env" "DIAGNOSE_PAGERDUTY_API_TOKEN" "ref" .Values.pagerduty.apiTokenSecret) }}
{{- if and .Values.slack.enabled (not $mcp) }}
- name: DIAGNOSE_SLACK_ENABLED
  value: "true"
{{- include "diagnose.secretEnv" (dict "env" "DIAGNOSE_SLACK_BOT_TOKEN" "ref" .Values.slack.botTokenSecret) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_SLACK_CHANNEL" "value" .Values.slack.channel) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_SLACK_APPROVERS" "value" (include "diagnose.pairs" .Values.slack.approvers)) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_SLACK_API_URL" "value" .Values.slack.apiUrl) }}
{{- if $api }}
{{- include "diagnose.secretEnv" (dict "env" "DIAGNOSE_SLACK_SIGNING_SECRET" "ref" .Values.slack.signingSecret) }}
{{- end }}
{{- end }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_PAGERDUTY_FROM_EMAIL" "value" .Values.pagerduty.fromEmail) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_PAGERDUTY_USER_ID" "value" .Values.pagerduty.userId) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_PAGERDUTY_API_URL" "value" .Values.pagerduty.apiUrl) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_PUBLIC_URL" "value" .Values.approvals.publicUrl) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_SERVICE_MAP" "value" (include "diagnose.pairs" .Values.naming.serviceMap)) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_NAMESPACE_MAP" "value" (include "diagnose.pairs" .Values.naming.namespaceMap)) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_DEFAULT_NAMESPACE" "value" .Values.naming.defaultNamespace) }}
{{- if .Values.vllm.enabled }}
- name: DIAGNOSE_LLM_BASE_URL
  value: {{ printf "http://%s-vllm:%v/v1" (include "diagnose.fullname" .) .Values.vllm.service.port | quote }}
- name: DIAGNOSE_LLM_MODEL
  value: {{ include "diagnose.vllmServedName" . | quote }}
{{- else }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_LLM_BASE_URL" "value" .Values.llm.baseUrl) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_LLM_MODEL" "value" .Values.llm.model) }}
{{- end }}
{{- include "diagnose.secretEnv" (dict "env" "DIAGNOSE_LLM_API_KEY" "ref" .Values.llm.apiKeySecret) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_LLM_TIMEOUT_S" "value" .Values.llm.timeoutSeconds) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_MAX_CONCURRENT_RUNS" "value" .Values.queue.maxConcurrentRuns) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_JOB_LEASE_S" "value" .Values.queue.jobLeaseSeconds) }}
{{- include "diagnose.plainEnv" (dict "env" "DIAGNOSE_JOB_MAX_ATTEMPTS" "value" .Values.queue.jobMaxAttempts) }}
{{- if .Values.actions.enabled }}
- name: DIAGNOSE_KUBERNETES_WRITE_KUBECONFIG
  value: /etc/diagnose/actions/kubeconfig
- name: DIAGNOSE_KUBERNETES_WRITE_CONTEXT
  value: diagnose-actions
- name: DIAGNOSE_EXECUTE
  value: {{ .Values.actions.execute | toString | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Volumes and mounts of an agent pod: (dict "root" $ "component" "api"). */}}
{{- define "diagnose.volumes" -}}
{{- $api := eq .component "api" -}}
{{- with .root -}}
- name: state
  emptyDir:
    sizeLimit: {{ .Values.stateVolume.sizeLimit }}
{{- if and (not $api) .Values.repositories.items }}
- name: repositories
  emptyDir:
    sizeLimit: {{ .Values.repositories.gitSync.cloneSizeLimit }}
- name: git-sync-tmp
  emptyDir:
    sizeLimit: 256Mi
{{- end }}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpVolume.sizeLimit }}
- name: playbooks
  configMap:
    name: {{ include "diagnose.playbooksConfigMap" . }}
{{- if and $api .Values.approvals.tokensSecret.name }}
- name: api-tokens
  secret:
    secretName: {{ .Values.approvals.tokensSecret.name }}
    items:
      - key: {{ .Values.approvals.tokensSecret.key }}
        path: {{ .Values.approvals.tokensSecret.key }}
    defaultMode: 0440
{{- end }}
{{- if .Values.actions.enabled }}
- name: actions
  projected:
    defaultMode: 0440
    sources:
      - secret:
          name: {{ include "diagnose.actionsServiceAccountName" . }}-token
          items:
            - key: token
              path: token
            - key: ca.crt
              path: ca.crt
      - configMap:
          name: {{ include "diagnose.actionsServiceAccountName" . }}-kubeconfig
          items:
            - key: kubeconfig
              path: kubeconfig
{{- end }}
{{- end }}
{{- end -}}

{{- define "diagnose.volumeMounts" -}}
{{- $api := eq .component "api" -}}
{{- with .root -}}
- name: state
  mountPath: /var/lib/diagnose
{{- if and (not $api) .Values.repositories.items }}
- name: repositories
  mountPath: {{ include "diagnose.repositoriesPath" . }}
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
- name: playbooks
  mountPath: {{ include "diagnose.playbooksPath" . }}
  readOnly: true
{{- if and $api .Values.approvals.tokensSecret.name }}
- name: api-tokens
  mountPath: /etc/diagnose/api-tokens
  readOnly: true
{{- end }}
{{- if .Values.actions.enabled }}
- name: actions
  mountPath: /etc/diagnose/actions
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}

{{/* Egress of the agent pods: DNS always; then everything, or the listed rules. */}}
{{- define "diagnose.egressRules" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- if .Values.networkPolicy.egress.allowAll }}
- {}
{{- else }}
{{- if .Values.vllm.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "diagnose.selectorLabels" (dict "root" . "component" "vllm") | nindent 10 }}
  ports:
    - port: {{ .Values.vllm.port }}
      protocol: TCP
{{- end }}
{{- with .Values.networkPolicy.egress.to }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Where the worker sees the clones git-sync keeps (read-only). */}}
{{- define "diagnose.repositoriesPath" -}}
/var/lib/diagnose-repositories
{{- end -}}

{{/* DIAGNOSE_REPOSITORIES: "url=clone,url=clone", one per repositories.items entry. */}}
{{- define "diagnose.repositoryClones" -}}
{{- $path := include "diagnose.repositoriesPath" . -}}
{{- $pairs := list -}}
{{- range .Values.repositories.items -}}
{{- $pairs = append $pairs (printf "%s=%s/%s" .url $path .name) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* One git-sync sidecar per repository: a shallow clone of its ref under /repositories/NAME,
fetched every periodSeconds, never run or checked out by the agent. */}}
{{- define "diagnose.gitSync" -}}
{{- $root := . -}}
{{- range .Values.repositories.items }}
- name: git-sync-{{ .name }}
  image: {{ $root.Values.repositories.gitSync.image | quote }}
  imagePullPolicy: IfNotPresent
  args:
    - --repo={{ .url }}
    {{- if .ref }}
    - --ref={{ .ref }}
    {{- end }}
    - --root=/repositories/{{ .name }}
    - --link=current
    - --depth={{ $root.Values.repositories.gitSync.depth }}
    - --period={{ $root.Values.repositories.gitSync.periodSeconds }}s
  env:
    - name: HOME
      value: /tmp
    {{- with .credentialsSecret }}
    {{- if .name }}
    - name: GITSYNC_USERNAME
      valueFrom:
        secretKeyRef:
          name: {{ .name }}
          key: {{ .usernameKey | default "username" }}
    - name: GITSYNC_PASSWORD
      valueFrom:
        secretKeyRef:
          name: {{ .name }}
          key: {{ .passwordKey | default "password" }}
    {{- end }}
    {{- end }}
  resources:
    {{- toYaml $root.Values.repositories.gitSync.resources | nindent 4 }}
  securityContext:
    {{- toYaml $root.Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: repositories
      mountPath: /repositories
    - name: git-sync-tmp
      mountPath: /tmp
{{- end }}
{{- end -}}
