// Package devices is the device registry: which devices may connect, with
// which key, and which twin mirrors each of them (as Azure Digital Twins
// mirrors IoT Hub devices).
//
// The registry is event-sourced like everything else: every change is an
// event on the log stream "devices" (types "device.put" and
// "device.deleted", each carrying the whole record), and the registry's
// state is rebuilt from that stream when it opens. Writes are appended with
// an expected stream version, so two writers cannot lose each other's
// changes.
//
// Keys are 256-bit random values generated here and shown once (on create
// and on regeneration). Only a salted SHA-256 of a key is stored. A slow
// password hash (bcrypt, argon2) exists to make guessing low-entropy human
// passwords expensive; a 256-bit random key cannot be guessed at any hash
// speed, while a slow hash would cost ~50–100 ms of CPU per MQTT CONNECT and
// turn a reconnect storm of thousands of devices into minutes of CPU. The
// per-key salt keeps equal keys from having equal hashes, and comparison is
// constant time. Regenerating a key or deleting a device revokes the old
// credentials at once: new connections are refused and a Disconnector (the
// embedded broker) closes the open ones.
//
// A device is provisioned when its twin exists. A device registered with a
// model id gets its twin at registration; one registered without a model is
// provisioned when it first announces its DTDL model id (Plug and Play
// style, see the mqtt package): the twin is created with that model through
// the twin service, then the registry records the model.
//
// Commands: Invoke delivers a DTDL command of a twin's model to the device
// mirrored by the twin through a CommandSender (the MQTT transport) and
// waits for the device's response, matched by request id, or a timeout.
package devices
