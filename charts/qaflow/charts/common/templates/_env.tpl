{{/*
The environment of a qaflow container, built from the contract (global.contract) and the
backends (global.kafka / global.postgres / global.redis). Services refuse to start on an
unknown QAFLOW_* variable, so only names from global.contract.envNames, global.config and
the values' env maps are rendered; tests/charts checks them against known_variables(). A
global.config entry goes only to the services that read it (qaflow.variables, generated).

Order matters: Kubernetes expands $(VAR) only from variables defined earlier in the list,
so the passwords that the URLs interpolate come first.

Usage: include "qaflow.env" .   (a subchart's root context)
*/}}
{{- define "qaflow.env" -}}
{{- $c := include "qaflow.contract" . | fromYaml -}}
{{- $g := .Values.global -}}
{{- $n := $g.contract.envNames -}}
{{- $backends := $c.backends | default list -}}
{{- $literal := dict -}}
{{- $first := list -}}
{{- $secret := list -}}
{{- $vars := include "qaflow.variables" . | fromYaml -}}
{{- $reads := index $vars .Chart.Name | default list -}}
{{- range $k, $v := ($g.config | default dict) -}}
{{- if or (has $k $reads) (not (has $k $vars._all)) -}}
{{- $_ := set $literal $k (include "qaflow.str" $v) -}}
{{- end -}}
{{- end -}}
{{- if $c.port -}}
{{- $_ := set $literal $n.httpPort (include "qaflow.str" $c.port) -}}
{{- $_ := set $literal $n.httpHost "0.0.0.0" -}}
{{- end -}}
{{- if has "bus" $backends -}}
{{- $k := $g.kafka -}}
{{- $_ := set $literal $n.busUrl (printf "kafka://%s" (include "qaflow.kafka.bootstrap" .)) -}}
{{- $_ := set $literal $n.kafkaCreateTopics (ternary "false" "true" (eq $k.mode "strimzi")) -}}
{{- if $k.auth.enabled -}}
{{- $_ := set $literal $n.kafkaSecurityProtocol ($k.auth.securityProtocol | default "SASL_PLAINTEXT") -}}
{{- $_ := set $literal $n.kafkaSaslMechanism "SCRAM-SHA-512" -}}
{{- if eq $k.mode "strimzi" -}}
{{- $user := include "qaflow.kafka.userName" (list . .Chart.Name) -}}
{{- $_ := set $literal $n.kafkaUsername $user -}}
{{- $secret = append $secret (dict "name" $n.kafkaPassword "secret" $user "key" "password") -}}
{{- else -}}
{{- $s := required "global.kafka.auth.existingSecret is required for SASL with an external Kafka" $k.auth.existingSecret -}}
{{- $secret = append $secret (dict "name" $n.kafkaUsername "secret" $s "key" $k.auth.usernameKey) -}}
{{- $secret = append $secret (dict "name" $n.kafkaPassword "secret" $s "key" $k.auth.passwordKey) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if has "store" $backends -}}
{{- $pg := $g.postgres -}}
{{- $pgSecret := include "qaflow.postgres.secretName" . -}}
{{- if $pg.auth.urlKey -}}
{{- $secret = append $secret (dict "name" $n.storeUrl "secret" $pgSecret "key" $pg.auth.urlKey) -}}
{{- else -}}
{{- $first = append $first (dict "name" "PGPASSWORD" "secret" $pgSecret "key" $pg.auth.passwordKey) -}}
{{- $query := ternary (printf "?sslmode=%s" $pg.sslmode) "" (not (empty $pg.sslmode)) -}}
{{- $url := printf "postgresql://%s:$(PGPASSWORD)@%s:%s/%s%s" (include "qaflow.postgres.user" .) (include "qaflow.postgres.host" .) (include "qaflow.str" $pg.port) $pg.database $query -}}
{{- $_ := set $literal $n.storeUrl $url -}}
{{- end -}}
{{- end -}}
{{- if has "cache" $backends -}}
{{- $r := $g.redis -}}
{{- $scheme := ternary "rediss" "redis" (eq (toString $r.tls) "true") -}}
{{- $hostPort := printf "%s:%s/%s" (include "qaflow.redis.host" .) (include "qaflow.str" $r.port) (include "qaflow.str" $r.db) -}}
{{- if $r.auth.existingSecret -}}
{{- $first = append $first (dict "name" "REDIS_PASSWORD" "secret" $r.auth.existingSecret "key" $r.auth.passwordKey) -}}
{{- $_ := set $literal $n.cacheUrl (printf "%s://:$(REDIS_PASSWORD)@%s" $scheme $hostPort) -}}
{{- else -}}
{{- $_ := set $literal $n.cacheUrl (printf "%s://%s" $scheme $hostPort) -}}
{{- end -}}
{{- end -}}
{{- range $k, $v := ($c.env | default dict) -}}
{{- $_ := set $literal $k (tpl (include "qaflow.str" $v) $) -}}
{{- end -}}
{{- range $k, $v := (.Values.env | default dict) -}}
{{- $_ := set $literal $k (include "qaflow.str" $v) -}}
{{- end -}}
{{- range $k, $ref := (.Values.secretEnv | default dict) -}}
{{- if $ref.secretName -}}
{{- $secret = append $secret (dict "name" $k "secret" $ref.secretName "key" $ref.key) -}}
{{- end -}}
{{- end -}}
{{- range $e := concat $first $secret -}}
{{- $_ := unset $literal $e.name -}}
{{- end -}}
{{- range $e := $first }}
- name: {{ $e.name }}
  valueFrom:
    secretKeyRef:
      name: {{ $e.secret }}
      key: {{ $e.key | quote }}
{{- end }}
{{- range $k := keys $literal | sortAlpha }}
- name: {{ $k }}
  value: {{ index $literal $k | quote }}
{{- end }}
{{- range $e := $secret }}
- name: {{ $e.name }}
  valueFrom:
    secretKeyRef:
      name: {{ $e.secret }}
      key: {{ $e.key | quote }}
{{- end }}
{{- if $c.prometheusMultiproc }}
- name: PROMETHEUS_MULTIPROC_DIR
  value: {{ $g.contract.prometheusMultiprocDir | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}
