{{/* Names and shared pieces of the coffer chart. */}}

{{- define "coffer.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "coffer.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "coffer.repositorySecret" -}}
{{- .Values.repository.existingSecret | default (printf "%s-repository" (include "coffer.fullname" .)) -}}
{{- end -}}

{{- define "coffer.postgresSecret" -}}
{{- .Values.postgres.existingSecret | default (printf "%s-postgres" (include "coffer.fullname" .)) -}}
{{- end -}}

{{- define "coffer.snapshotHost" -}}
{{- .Values.backup.host | default .Release.Name -}}
{{- end -}}

{{/* Environment every coffer container needs: the repository and its store. */}}
{{- define "coffer.repositoryEnv" -}}
- name: COFFER_REPOSITORY
  value: {{ required "repository.url is required" .Values.repository.url | quote }}
- name: COFFER_PASSWORD_FILE
  value: /secrets/coffer/repository-password
- name: COFFER_CACHE_LIMIT
  value: {{ .Values.cache.limit | quote }}
{{- range $k, $v := .Values.repository.env }}
- name: {{ $k }}
  value: {{ $v | quote }}
{{- end }}
{{- if hasPrefix "s3://" .Values.repository.url }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef: {name: {{ include "coffer.repositorySecret" . }}, key: AWS_ACCESS_KEY_ID}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef: {name: {{ include "coffer.repositorySecret" . }}, key: AWS_SECRET_ACCESS_KEY}
{{- end }}
{{- end -}}

{{- define "coffer.postgresEnv" -}}
- name: PGHOST
  value: {{ .Values.postgres.host | quote }}
- name: PGPORT
  value: {{ .Values.postgres.port | quote }}
- name: PGUSER
  valueFrom:
    secretKeyRef: {name: {{ include "coffer.postgresSecret" . }}, key: PGUSER}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef: {name: {{ include "coffer.postgresSecret" . }}, key: PGPASSWORD}
{{- end -}}

{{- define "coffer.volumeMounts" -}}
- {name: repository-password, mountPath: /secrets/coffer, readOnly: true}
- {name: cache, mountPath: /cache}
- {name: tmp, mountPath: /tmp}
{{- end -}}

{{- define "coffer.volumes" -}}
- name: repository-password
  secret:
    secretName: {{ include "coffer.repositorySecret" . }}
    defaultMode: 0440
    items:
      - {key: repository-password, path: repository-password}
- name: cache
{{- if .Values.cache.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.cache.existingClaim | quote }}
{{- else }}
  emptyDir: {}
{{- end }}
- name: tmp
  emptyDir: {}
{{- end -}}

{{/* Pod-level settings shared by the CronJobs. */}}
{{- define "coffer.podSpec" -}}
restartPolicy: Never
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  {{- include "coffer.volumes" . | nindent 2 }}
{{- end -}}
