{{/*
The objects every qaflow Python service has: Deployment, Service, PodDisruptionBudget,
ServiceAccount, ServiceMonitor and NetworkPolicy. A subchart's templates are one line each
(include "qaflow.deployment" .), and what differs between services (command, port, probe
paths, backends) comes from global.contract.services.<chart name>.
*/}}

{{/* Replicas are left to the autoscaler when one is on. */}}
{{- define "qaflow.autoscaled" -}}
{{- $a := .Values.autoscaling | default dict -}}
{{- if or (eq (toString $a.mode) "hpa") (eq (toString $a.mode) "keda") -}}true{{- end -}}
{{- end -}}

{{- define "qaflow.httpProbe" -}}
{{- $path := index . 0 -}}
{{- $timing := index . 1 | default dict -}}
httpGet:
  path: {{ $path }}
  port: http
{{- with $timing }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "qaflow.podSecurityContext" -}}
{{- toYaml (mustMergeOverwrite (deepCopy (.Values.global.podSecurityContext | default dict)) (.Values.podSecurityContext | default dict)) -}}
{{- end -}}

{{- define "qaflow.containerSecurityContext" -}}
{{- toYaml (mustMergeOverwrite (deepCopy (.Values.global.containerSecurityContext | default dict)) (.Values.securityContext | default dict)) -}}
{{- end -}}

{{- define "qaflow.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "qaflow.deployment" -}}
{{- $c := include "qaflow.contract" . | fromYaml -}}
{{- $g := .Values.global -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "qaflow.fullname" . }}
  labels:
    {{- include "qaflow.labels" . | nindent 4 }}
spec:
  {{- if not (include "qaflow.autoscaled" .) }}
  replicas: {{ .Values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      {{- include "qaflow.selectorLabels" . | nindent 6 }}
  {{- with .Values.strategy }}
  strategy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  template:
    metadata:
      labels:
        {{- include "qaflow.selectorLabels" . | nindent 8 }}
        app.kubernetes.io/part-of: qaflow
        app.kubernetes.io/component: {{ include "qaflow.name" . }}
        {{- with .Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with .Values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "qaflow.serviceAccountName" . }}
      automountServiceAccountToken: false
      {{- if .Values.global.hostNetwork }}
      hostNetwork: true
      dnsPolicy: ClusterFirstWithHostNet
      {{- end }}
      {{- with (include "qaflow.imagePullSecrets" . | trim) }}
      {{- . | nindent 6 }}
      {{- end }}
      securityContext:
        {{- include "qaflow.podSecurityContext" . | nindent 8 }}
      terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds | default 30 }}
      containers:
        - name: {{ .Chart.Name }}
          image: {{ include "qaflow.image" (list . .Values.image) | quote }}
          imagePullPolicy: {{ .Values.image.pullPolicy | default $g.image.pullPolicy }}
          command:
            {{- toYaml $c.command | nindent 12 }}
          {{- $args := concat ($c.args | default list) (.Values.extraArgs | default list) }}
          {{- with $args }}
          args:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          ports:
            - name: http
              containerPort: {{ $c.port }}
              protocol: TCP
          env:
            {{- include "qaflow.env" . | trim | nindent 12 }}
          {{- $probes := .Values.probes | default dict }}
          {{- if $probes.startup }}
          startupProbe:
            {{- include "qaflow.httpProbe" (list $c.health.liveness $probes.startup) | nindent 12 }}
          {{- end }}
          livenessProbe:
            {{- include "qaflow.httpProbe" (list $c.health.liveness $probes.liveness) | nindent 12 }}
          readinessProbe:
            {{- include "qaflow.httpProbe" (list $c.health.readiness $probes.readiness) | nindent 12 }}
          resources:
            {{- toYaml (required (printf "%s.resources is required" .Chart.Name) .Values.resources) | nindent 12 }}
          securityContext:
            {{- include "qaflow.containerSecurityContext" . | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if $c.prometheusMultiproc }}
            - name: prometheus-multiproc
              mountPath: {{ $g.contract.prometheusMultiprocDir }}
            {{- end }}
            {{- with .Values.extraVolumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: {{ .Values.tmpSizeLimit | default "256Mi" }}
        {{- if $c.prometheusMultiproc }}
        - name: prometheus-multiproc
          emptyDir:
            medium: Memory
            sizeLimit: 64Mi
        {{- end }}
        {{- with .Values.extraVolumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with .Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{- define "qaflow.service" -}}
{{- $c := include "qaflow.contract" . | fromYaml -}}
{{- $svc := .Values.service | default dict -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "qaflow.fullname" . }}
  labels:
    {{- include "qaflow.labels" . | nindent 4 }}
spec:
  type: {{ $svc.type | default "ClusterIP" }}
  selector:
    {{- include "qaflow.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ $svc.port | default $c.port }}
      targetPort: http
      protocol: TCP
{{- end -}}

{{- define "qaflow.serviceAccount" -}}
{{- $sa := .Values.serviceAccount | default dict -}}
{{- if $sa.create }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "qaflow.serviceAccountName" . }}
  labels:
    {{- include "qaflow.labels" . | nindent 4 }}
  {{- with $sa.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: false
{{- end }}
{{- end -}}

{{/* A PDB only protects something when more than one pod may run. */}}
{{- define "qaflow.pdb" -}}
{{- $pdb := .Values.pdb | default dict -}}
{{- $a := .Values.autoscaling | default dict -}}
{{- $many := or (gt (int .Values.replicaCount) 1) (and (include "qaflow.autoscaled" .) (gt (int ($a.minReplicas | default 1)) 1)) -}}
{{- if and $pdb.enabled $many }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "qaflow.fullname" . }}
  labels:
    {{- include "qaflow.labels" . | nindent 4 }}
spec:
  {{- if $pdb.minAvailable }}
  minAvailable: {{ $pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $pdb.maxUnavailable | default 1 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "qaflow.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}

{{- define "qaflow.serviceMonitor" -}}
{{- $c := include "qaflow.contract" . | fromYaml -}}
{{- $m := .Values.global.monitoring.serviceMonitor -}}
{{- if $m.enabled }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "qaflow.fullname" . }}
  labels:
    {{- include "qaflow.labels" . | nindent 4 }}
    {{- with $m.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "qaflow.selectorLabels" . | nindent 6 }}
  endpoints:
    - port: http
      path: {{ $c.metricsPath }}
      interval: {{ $m.interval }}
      scrapeTimeout: {{ $m.scrapeTimeout }}
{{- end }}
{{- end -}}

{{/*
Ingress to a service's port from the pods of this release only, plus the peers listed in
networkPolicy.extraFrom (an ingress controller, Prometheus). Egress stays open: the LLM
provider's address is deployment-specific.
*/}}
{{- define "qaflow.networkPolicy" -}}
{{- $np := .Values.global.networkPolicy -}}
{{- if $np.enabled }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "qaflow.fullname" . }}
  labels:
    {{- include "qaflow.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "qaflow.selectorLabels" . | nindent 6 }}
  policyTypes: [Ingress]
  ingress:
    - ports:
        - port: http
          protocol: TCP
      from:
        - podSelector:
            matchLabels:
              app.kubernetes.io/instance: {{ .Release.Name }}
        {{- with $np.extraFrom }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- with (.Values.networkPolicy | default dict).extraFrom }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
{{- end }}
{{- end -}}
