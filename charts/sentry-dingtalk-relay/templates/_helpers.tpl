{{/*
Expand the name of the chart.
*/}}
{{- define "sentry-dingtalk-relay.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name, truncated to 63 characters (the DNS label limit).
If the release name contains the chart name it is used as the full name.
*/}}
{{- define "sentry-dingtalk-relay.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, as used by the helm.sh/chart label.
*/}}
{{- define "sentry-dingtalk-relay.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "sentry-dingtalk-relay.labels" -}}
helm.sh/chart: {{ include "sentry-dingtalk-relay.chart" . }}
{{ include "sentry-dingtalk-relay.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels: immutable on a Deployment, so they never include the version.
*/}}
{{- define "sentry-dingtalk-relay.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sentry-dingtalk-relay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Name of the service account to use.
*/}}
{{- define "sentry-dingtalk-relay.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sentry-dingtalk-relay.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference: the digest pins it when set; the tag defaults to the appVersion.
*/}}
{{- define "sentry-dingtalk-relay.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion | toString }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
"true" when the queue lives in Redis (several replicas allowed, /data is only a spool), "" otherwise.
*/}}
{{- define "sentry-dingtalk-relay.redisEnabled" -}}
{{- if .Values.redis.enabled }}true{{ end }}
{{- end }}

{{/*
"true" when /data is the chart's or an existing PersistentVolumeClaim, "" when it is an emptyDir.
*/}}
{{- define "sentry-dingtalk-relay.persistent" -}}
{{- if and .Values.persistence.enabled (not .Values.redis.enabled) }}true{{ end }}
{{- end }}

{{/*
Name of the Secret the secret variables are read from: existingSecret or the chart's own.
*/}}
{{- define "sentry-dingtalk-relay.secretName" -}}
{{- default (include "sentry-dingtalk-relay.fullname" .) .Values.existingSecret }}
{{- end }}

{{/*
Data of the chart's Secret as a YAML map (key -> plain value), holding only the values that are
set, so an unset value leaves its variable unset. Empty when existingSecret is used.
*/}}
{{- define "sentry-dingtalk-relay.secretData" -}}
{{- if not .Values.existingSecret }}
{{- with .Values.dingtalk.tokens }}
dingtalk-tokens: {{ join "\n" . | quote }}
{{- end }}
{{- with .Values.dingtalk.secrets }}
dingtalk-secrets: {{ join "\n" . | quote }}
{{- end }}
{{- with .Values.sentry.clientSecret }}
{{- /* A list is one secret per Sentry integration, one per line as the relay reads them. */}}
sentry-client-secret: {{ ternary (join "\n" .) . (kindIs "slice" .) | quote }}
{{- end }}
{{- with .Values.sentry.webhookToken }}
webhook-token: {{ . | quote }}
{{- end }}
{{- with .Values.sentry.dsn }}
sentry-dsn: {{ . | quote }}
{{- end }}
{{- with .Values.actions.authToken }}
sentry-auth-token: {{ . | quote }}
{{- end }}
{{- with .Values.actions.key }}
action-key: {{ . | quote }}
{{- end }}
{{- with .Values.canary.dsn }}
canary-dsn: {{ . | quote }}
{{- end }}
{{- with .Values.smtp.url }}
smtp-url: {{ . | quote }}
{{- end }}
{{- if and .Values.redis.enabled .Values.redis.url }}
redis-url: {{ .Values.redis.url | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Where the routes file and the card template are mounted.
*/}}
{{- define "sentry-dingtalk-relay.routesDir" -}}/etc/sentry-dingtalk-relay/routes{{- end }}
{{- define "sentry-dingtalk-relay.templateDir" -}}/etc/sentry-dingtalk-relay/template{{- end }}

{{/*
Checks of combinations the schema cannot express. Messages name the values to change and never
print secret values.
*/}}
{{- define "sentry-dingtalk-relay.validate" -}}
{{- $redis := include "sentry-dingtalk-relay.redisEnabled" . }}
{{- if and (gt (int .Values.replicaCount) 1) (not $redis) }}
{{- fail (printf "replicaCount=%d needs redis.enabled=true: without Redis the queue is a bbolt file that only one pod can lock and the DingTalk rate limit lives in that pod, so run a single replica (replicaCount: 1) or enable Redis" (int .Values.replicaCount)) }}
{{- end }}
{{- if and (not .Values.redis.enabled) (or .Values.redis.url .Values.redis.existingSecret) }}
{{- fail "redis.url or redis.existingSecret is set but redis.enabled is false: set redis.enabled=true to use Redis, or remove them" }}
{{- end }}
{{- if .Values.redis.enabled }}
{{- if and .Values.redis.url .Values.redis.existingSecret }}
{{- fail "redis.url and redis.existingSecret are both set: use only one" }}
{{- end }}
{{- if not (or .Values.redis.url .Values.redis.existingSecret .Values.existingSecret) }}
{{- fail "redis.enabled=true needs the Redis URL: set redis.url, redis.existingSecret, or existingSecret with the key in existingSecretKeys.redisURL" }}
{{- end }}
{{- end }}
{{- if .Values.existingSecret }}
{{- $inline := list }}
{{- if .Values.dingtalk.tokens }}{{ $inline = append $inline "dingtalk.tokens" }}{{ end }}
{{- if .Values.dingtalk.secrets }}{{ $inline = append $inline "dingtalk.secrets" }}{{ end }}
{{- if .Values.sentry.clientSecret }}{{ $inline = append $inline "sentry.clientSecret" }}{{ end }}
{{- if .Values.sentry.webhookToken }}{{ $inline = append $inline "sentry.webhookToken" }}{{ end }}
{{- if .Values.sentry.dsn }}{{ $inline = append $inline "sentry.dsn" }}{{ end }}
{{- if .Values.actions.authToken }}{{ $inline = append $inline "actions.authToken" }}{{ end }}
{{- if .Values.actions.key }}{{ $inline = append $inline "actions.key" }}{{ end }}
{{- if .Values.canary.dsn }}{{ $inline = append $inline "canary.dsn" }}{{ end }}
{{- if .Values.smtp.url }}{{ $inline = append $inline "smtp.url" }}{{ end }}
{{- if .Values.redis.url }}{{ $inline = append $inline "redis.url" }}{{ end }}
{{- if $inline }}
{{- fail (printf "existingSecret is set, so the chart creates no Secret and would ignore %s: put those values in the Secret %q (keys in existingSecretKeys) or unset existingSecret" (join ", " $inline) .Values.existingSecret) }}
{{- end }}
{{- end }}
{{- /* With existingSecret the chart cannot see the token and key: the relay checks those. */}}
{{- if not .Values.existingSecret }}
{{- with .Values.actions }}
{{- $missing := list }}
{{- if not .publicURL }}{{ $missing = append $missing "actions.publicURL" }}{{ end }}
{{- if not .authToken }}{{ $missing = append $missing "actions.authToken" }}{{ end }}
{{- if not .key }}{{ $missing = append $missing "actions.key" }}{{ end }}
{{- if and $missing (lt (len $missing) 3) }}
{{- fail (printf "action links need actions.publicURL, actions.authToken and actions.key together (the relay refuses to start otherwise): set %s, or unset the others" (join " and " $missing)) }}
{{- end }}
{{- if and .publicURL (not $.Values.sentry.url) (not $.Values.sentry.clientSecret) }}
{{- fail "action links need sentry.url when sentry.clientSecret is not set: the relay calls Sentry with actions.authToken, and an unsigned webhook must not choose where to" }}
{{- end }}
{{- end }}
{{- end }}
{{- $tokens := len .Values.dingtalk.tokens }}
{{- $secrets := len .Values.dingtalk.secrets }}
{{- if and (gt $secrets 0) (ne $secrets $tokens) }}
{{- fail (printf "dingtalk.secrets has %d entries but dingtalk.tokens has %d: each secret belongs to the token at the same position (use \"-\" for a robot without one)" $secrets $tokens) }}
{{- end }}
{{- if and .Values.routes.config .Values.routes.existingSecret }}
{{- fail "routes.config and routes.existingSecret are both set: use only one" }}
{{- end }}
{{- if and .Values.template.content .Values.template.existingConfigMap }}
{{- fail "template.content and template.existingConfigMap are both set: use only one" }}
{{- end }}
{{- with .Values.config.shutdownTimeout }}
{{- $seconds := -1 }}
{{- if regexMatch "^[0-9]+s$" . }}{{ $seconds = trimSuffix "s" . | int }}{{ end }}
{{- if regexMatch "^[0-9]+m$" . }}{{ $seconds = mul (trimSuffix "m" . | int) 60 }}{{ end }}
{{- if ge (int $seconds) (int $.Values.terminationGracePeriodSeconds) }}
{{- fail (printf "config.shutdownTimeout=%s must be shorter than terminationGracePeriodSeconds=%d, or the kubelet kills the relay while it drains" . (int $.Values.terminationGracePeriodSeconds)) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
secretKeyRef to one key of the chart Secret or of existingSecret. Optional: a missing key leaves
the variable unset, as an unset value does.
*/}}
{{- define "sentry-dingtalk-relay.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
      optional: true
{{- end }}

{{/*
Environment of the relay container. A value that is not set leaves its variable unset, so the
relay's default applies; RELAY_ADDR and RELAY_DATA_DIR are always set because the probes, the
Service and the /data volume depend on them.
*/}}
{{- define "sentry-dingtalk-relay.env" -}}
{{- $secretName := include "sentry-dingtalk-relay.secretName" . }}
{{- $data := include "sentry-dingtalk-relay.secretData" . | fromYaml }}
{{- $keys := .Values.existingSecretKeys }}
{{- $secretVars := list
  (list "DINGTALK_TOKENS" "dingtalk-tokens" $keys.dingtalkTokens)
  (list "DINGTALK_SECRETS" "dingtalk-secrets" $keys.dingtalkSecrets)
  (list "SENTRY_CLIENT_SECRET" "sentry-client-secret" $keys.sentryClientSecret)
  (list "RELAY_WEBHOOK_TOKEN" "webhook-token" $keys.webhookToken)
  (list "SENTRY_DSN" "sentry-dsn" $keys.sentryDSN)
  (list "SENTRY_AUTH_TOKEN" "sentry-auth-token" $keys.sentryAuthToken)
  (list "RELAY_ACTION_KEY" "action-key" $keys.actionKey)
  (list "RELAY_CANARY_DSN" "canary-dsn" $keys.canaryDSN)
  (list "RELAY_SMTP_URL" "smtp-url" $keys.smtpURL) }}
- name: RELAY_ADDR
  value: {{ printf ":%d" (int .Values.containerPort) | quote }}
- name: RELAY_DATA_DIR
  value: /data
{{- range $secretVars }}
{{- if $.Values.existingSecret }}
{{ include "sentry-dingtalk-relay.secretEnv" (dict "env" (index . 0) "secret" $secretName "key" (index . 2)) }}
{{- else if hasKey $data (index . 1) }}
{{ include "sentry-dingtalk-relay.secretEnv" (dict "env" (index . 0) "secret" $secretName "key" (index . 1)) }}
{{- end }}
{{- end }}
{{- if .Values.redis.enabled }}
{{- /* Not optional: without the URL the relay would fall back to a per-pod queue and rate
limit while several replicas run, and exceed DingTalk's limit. Better not to start. */}}
- name: RELAY_REDIS_URL
  valueFrom:
    secretKeyRef:
      {{- if .Values.redis.existingSecret }}
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.existingSecretKey }}
      {{- else if .Values.redis.url }}
      name: {{ include "sentry-dingtalk-relay.fullname" . }}
      key: redis-url
      {{- else }}
      name: {{ .Values.existingSecret }}
      key: {{ $keys.redisURL }}
      {{- end }}
{{- end }}
{{- with .Values.dingtalk.keyword }}
- name: DINGTALK_KEYWORD
  value: {{ . | quote }}
{{- end }}
{{- with .Values.dingtalk.atMobiles }}
- name: DINGTALK_AT_MOBILES
  value: {{ join "," . | quote }}
{{- end }}
{{- if .Values.dingtalk.atAll }}
- name: DINGTALK_AT_ALL
  value: "true"
{{- end }}
{{- with .Values.dingtalk.apiURL }}
- name: DINGTALK_API_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.sentry.url }}
- name: SENTRY_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.actions.publicURL }}
- name: RELAY_PUBLIC_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.actions.ttl }}
- name: RELAY_ACTION_TTL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.canary.interval }}
- name: RELAY_CANARY_INTERVAL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.canary.timeout }}
- name: RELAY_CANARY_TIMEOUT
  value: {{ . | quote }}
{{- end }}
{{- with .Values.smtp.from }}
- name: RELAY_SMTP_FROM
  value: {{ . | quote }}
{{- end }}
{{- with .Values.config }}
{{- with .language }}
- name: RELAY_LANGUAGE
  value: {{ . | quote }}
{{- end }}
{{- with .timezone }}
- name: RELAY_TIMEZONE
  value: {{ . | quote }}
{{- end }}
{{- with .ratePerMinute }}
- name: RELAY_RATE_PER_MINUTE
  value: {{ int64 . | toString | quote }}
{{- end }}
{{- with .maxBodyBytes }}
{{- /* int64 first: YAML numbers arrive as float64 and would print as 1.048576e+07 */}}
- name: RELAY_MAX_BODY_BYTES
  value: {{ int64 . | toString | quote }}
{{- end }}
{{- with .maxAge }}
- name: RELAY_MAX_AGE
  value: {{ . | quote }}
{{- end }}
{{- with .dedupeWindow }}
- name: RELAY_DEDUPE_WINDOW
  value: {{ . | quote }}
{{- end }}
{{- with .shutdownTimeout }}
- name: RELAY_SHUTDOWN_TIMEOUT
  value: {{ . | quote }}
{{- end }}
{{- with .fallbackAfter }}
- name: RELAY_FALLBACK_AFTER
  value: {{ . | quote }}
{{- end }}
{{- with .quietAlert }}
- name: RELAY_QUIET_ALERT
  value: {{ . | quote }}
{{- end }}
{{- with .logLevel }}
- name: LOG_LEVEL
  value: {{ . | quote }}
{{- end }}
{{- with .logFormat }}
- name: LOG_FORMAT
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- if or .Values.routes.config .Values.routes.existingSecret }}
- name: RELAY_ROUTES_FILE
  value: {{ include "sentry-dingtalk-relay.routesDir" . }}/routes.yaml
{{- end }}
{{- if or .Values.template.content .Values.template.existingConfigMap }}
- name: RELAY_TEMPLATE_FILE
  value: {{ include "sentry-dingtalk-relay.templateDir" . }}/card.tmpl
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
A probe from its values block, without the chart's "enabled" switch.
*/}}
{{- define "sentry-dingtalk-relay.probe" -}}
{{- toYaml (omit . "enabled") }}
{{- end }}

{{/*
The pod spec, shared so every workload renders the same pod.
*/}}
{{- define "sentry-dingtalk-relay.podSpec" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
serviceAccountName: {{ include "sentry-dingtalk-relay.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automount }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ int .Values.terminationGracePeriodSeconds }}
containers:
  - name: relay
    image: {{ include "sentry-dingtalk-relay.image" . | quote }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    {{- with .Values.args }}
    args:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    ports:
      - name: http
        containerPort: {{ int .Values.containerPort }}
        protocol: TCP
    env:
      {{- include "sentry-dingtalk-relay.env" . | trim | nindent 6 }}
    {{- with .Values.extraEnvFrom }}
    envFrom:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- if .Values.livenessProbe.enabled }}
    livenessProbe:
      {{- include "sentry-dingtalk-relay.probe" .Values.livenessProbe | nindent 6 }}
    {{- end }}
    {{- if .Values.readinessProbe.enabled }}
    readinessProbe:
      {{- include "sentry-dingtalk-relay.probe" .Values.readinessProbe | nindent 6 }}
    {{- end }}
    {{- if .Values.startupProbe.enabled }}
    startupProbe:
      {{- include "sentry-dingtalk-relay.probe" .Values.startupProbe | nindent 6 }}
    {{- end }}
    {{- with .Values.lifecycle }}
    lifecycle:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    securityContext:
      {{- toYaml .Values.securityContext | nindent 6 }}
    {{- with .Values.resources }}
    resources:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    volumeMounts:
      - name: data
        mountPath: /data
      {{- if or .Values.routes.config .Values.routes.existingSecret }}
      - name: routes
        mountPath: {{ include "sentry-dingtalk-relay.routesDir" . }}
        readOnly: true
      {{- end }}
      {{- if or .Values.template.content .Values.template.existingConfigMap }}
      - name: template
        mountPath: {{ include "sentry-dingtalk-relay.templateDir" . }}
        readOnly: true
      {{- end }}
      {{- with .Values.extraVolumeMounts }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
volumes:
  - name: data
    {{- if include "sentry-dingtalk-relay.persistent" . }}
    persistentVolumeClaim:
      claimName: {{ .Values.persistence.existingClaim | default (printf "%s-data" (include "sentry-dingtalk-relay.fullname" .)) }}
    {{- else }}
    emptyDir: {{- toYaml .Values.persistence.emptyDir | nindent 6 }}
    {{- end }}
  {{- if or .Values.routes.config .Values.routes.existingSecret }}
  - name: routes
    secret:
      secretName: {{ .Values.routes.existingSecret | default (printf "%s-routes" (include "sentry-dingtalk-relay.fullname" .)) }}
      {{- /* Project only the routes key, under the name RELAY_ROUTES_FILE points at. */}}
      items:
        - key: {{ ternary .Values.routes.key "routes.yaml" (not (empty .Values.routes.existingSecret)) }}
          path: routes.yaml
      defaultMode: 0440
  {{- end }}
  {{- if or .Values.template.content .Values.template.existingConfigMap }}
  - name: template
    configMap:
      name: {{ .Values.template.existingConfigMap | default (printf "%s-template" (include "sentry-dingtalk-relay.fullname" .)) }}
      items:
        - key: {{ ternary .Values.template.key "card.tmpl" (not (empty .Values.template.existingConfigMap)) }}
          path: card.tmpl
  {{- end }}
  {{- with .Values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Hash of everything the relay reads only at start-up (Secret, routes Secret, template ConfigMap),
so that changing any of them rolls the pods.
*/}}
{{- define "sentry-dingtalk-relay.configChecksum" -}}
{{- $files := list "/secret.yaml" "/routes-secret.yaml" "/template-configmap.yaml" }}
{{- $out := list }}
{{- range $files }}
{{- $out = append $out (include (print $.Template.BasePath .) $) }}
{{- end }}
{{- join "\n---\n" $out | sha256sum }}
{{- end }}
