{{/*
Umbrella-only helpers. The shared ones (names, labels, env, workloads) are in the library
subchart charts/common, so the subcharts can use them too.
*/}}

{{/* Replication factor of Kafka topics and internal topics. */}}
{{- define "qaflow.kafka.replicationFactor" -}}
{{- if .Values.kafka.defaultReplicationFactor -}}
{{- .Values.kafka.defaultReplicationFactor -}}
{{- else -}}
{{- min 3 (int .Values.kafka.replicas) -}}
{{- end -}}
{{- end -}}

{{- define "qaflow.kafka.minIsr" -}}
{{- if .Values.kafka.minInsyncReplicas -}}
{{- .Values.kafka.minInsyncReplicas -}}
{{- else if gt (int .Values.kafka.replicas) 1 -}}
2
{{- else -}}
1
{{- end -}}
{{- end -}}

{{/* Enabled services that use the bus, i.e. that need a KafkaUser. */}}
{{- define "qaflow.kafka.clients" -}}
{{- $out := list -}}
{{- range $name, $svc := .Values.global.contract.services -}}
{{- $sub := index $.Values $name | default dict -}}
{{- if and (has "bus" ($svc.backends | default list)) (ne (toString $sub.enabled) "false") -}}
{{- $out = append $out $name -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* Does KEDA scale the llm-workers? */}}
{{- define "qaflow.keda" -}}
{{- $w := index .Values "llm-worker" | default dict -}}
{{- if and (ne (toString $w.enabled) "false") (eq (toString (($w.autoscaling | default dict).mode)) "keda") -}}true{{- end -}}
{{- end -}}

{{/* With NetworkPolicies on, the listeners accept this release's pods and kafka.networkPolicyPeers only. */}}
{{- define "qaflow.kafka.listenerPeers" -}}
{{- if .Values.global.networkPolicy.enabled -}}
networkPolicyPeers:
  - podSelector:
      matchLabels:
        app.kubernetes.io/instance: {{ .Release.Name }}
{{- with .Values.kafka.networkPolicyPeers }}
{{ toYaml . | indent 2 }}
{{- end }}
{{- end -}}
{{- end -}}
