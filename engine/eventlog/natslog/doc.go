// Package natslog is the NATS JetStream backend of eventlog.Log.
package natslog
