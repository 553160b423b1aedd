// Package mqtt connects devices to twinlog over MQTT: an embedded broker
// (mochi-mqtt, a pure-Go MQTT 3.1.1/5 broker that runs in-process with
// hooks on authentication, ACLs and every publish, which is what lets the
// PUBACK wait for the log) and a client mode that subscribes to an external
// broker such as Mosquitto (paho.mqtt.golang, the Eclipse Go client, with
// manual acknowledgement). Both feed one Gateway, which writes telemetry
// through processors/ingest, reported properties through the twin service,
// and hands command responses to the device registry (processors/devices).
//
// # Topics
//
// Device → twinlog:
//
//	devices/{deviceId}/telemetry                      telemetry points
//	devices/{deviceId}/properties/reported            reported properties
//	devices/{deviceId}/commands/{name}/res/{requestId}[/{status}]
//	                                                  a command response
//
// twinlog → device (subscribe to devices/{deviceId}/#):
//
//	devices/{deviceId}/commands/{name}/req/{requestId}  a command request
//	devices/{deviceId}/errors                          rejection reports
//
// A telemetry payload is a JSON object of telemetry values by name, an
// array of such objects, or NDJSON; an object may also carry "time" (RFC
// 3339 source time), "messageId", "component" and "$model". Each value is
// validated against the twin's DTDL telemetry like POST /ingest; a point
// may not name a twinId or deviceId (the topic says who sent it).
// Reported properties are a JSON object of property values by name,
// written into the twin as a JSON Patch of "add" operations. A command
// request's payload is the command's request value (JSON, null for none);
// the response's payload is the response value, and the optional last
// topic level is its status (default 200). Command topics put the request
// id in the topic so that MQTT 3.1.1 devices can correlate without MQTT 5
// properties.
//
// # Provisioning
//
// A device is registered (PUT /devices/{id}) before it connects; the key
// returned then is its MQTT password and its id its username. A new key
// (POST /devices/{id}/regenerateKey) or the device's deletion closes its
// connections to the embedded broker at once. A device
// registered without a model announces it, Plug and Play style, with a
// "$model" member in a telemetry or reported-properties message, or the
// MQTT 5 user property "model-id" on CONNECT or PUBLISH: its twin is then
// created with that model. Until then its telemetry is rejected with
// DeviceNotProvisioned.
//
// # Acknowledgements
//
// QoS 1 is acknowledged only after the message's points are durable in the
// log. The broker's OnPublish hook queues the message and tells mochi not
// to answer (packets.ErrRejectPacket); the Gateway appends queued messages
// of all connections together in one ingest call (group commit) and the
// broker then writes every connection's PUBACKs of that batch in one write,
// in the order the messages arrived. A device may keep many QoS 1 messages
// in flight. A message whose points are all rejected is acknowledged all
// the same (the device must not resend it) — with reason code 0x99 or
// 0x87 on MQTT 5 — and the reasons are published on
// devices/{deviceId}/errors and logged. A message that could not be
// appended is not acknowledged and its connection is closed, so the device
// resends it. QoS 2 is downgraded to 1 (the broker announces maximum QoS
// 1).
//
// In client mode the same holds against the external broker: paho's
// automatic acknowledgement is off and a message is acknowledged once
// durable. Credentials and ACLs are then the external broker's business;
// a message from a device the registry does not know is not appended, and
// is logged and counted (Stats.Rejected).
package mqtt
