{{/* The gateway's labels as weft-ingress --labels takes them: k=v,k=v (sorted by key). */}}
{{- define "gateway.labelList" -}}
{{- $pairs := list }}
{{- range $k, $v := .Values.labels }}{{ $pairs = append $pairs (printf "%s=%s" $k $v) }}{{ end }}
{{- join "," $pairs }}
{{- end }}
