package httpapi

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/processors/devices"
)

// RegisterDevices serves the device registry and device commands:
//
//	GET    /devices                             list
//	GET    /devices/{id}                        one device
//	PUT    /devices/{id}                        register or update {twinId, modelId};
//	                                            201 with the device's key on create
//	DELETE /devices/{id}                        remove (the twin stays)
//	POST   /devices/{id}/regenerateKey          a new key, shown once
//	POST   /digitaltwins/{id}/commands/{name}   invoke a DTDL command on the device
//	                                            mirrored by the twin; the body is the
//	                                            request payload; ?responseTimeoutInSeconds=
//
// A command answers 200 with {"status", "payload"} from the device, or 504
// (GatewayTimeout) in ADT's error shape when the device did not answer in
// time.
func (s *Server) RegisterDevices(reg *devices.Registry) {
	s.Handle("GET /devices", func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, map[string]any{"value": reg.List(), "nextLink": nil})
		return nil
	})
	s.Handle("GET /devices/{id}", func(w http.ResponseWriter, r *http.Request) error {
		d, ok := reg.Get(r.PathValue("id"))
		if !ok {
			return deviceNotFound(r.PathValue("id"))
		}
		writeJSON(w, http.StatusOK, d)
		return nil
	})
	s.Handle("PUT /devices/{id}", func(w http.ResponseWriter, r *http.Request) error {
		var req devices.PutRequest
		if r.ContentLength != 0 {
			if err := decodeJSONBody(r, &req); err != nil && !errors.Is(err, io.EOF) {
				return err
			}
		}
		ctx, cancel := requestContext(r)
		defer cancel()
		d, key, created, err := reg.Put(ctx, actor(r), r.PathValue("id"), req)
		if err != nil {
			return err
		}
		if !created {
			writeJSON(w, http.StatusOK, d)
			return nil
		}
		writeJSON(w, http.StatusCreated, struct {
			devices.Device
			Key string `json:"key"`
		}{d, key})
		return nil
	})
	s.Handle("DELETE /devices/{id}", func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := requestContext(r)
		defer cancel()
		if err := reg.Delete(ctx, actor(r), r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.Handle("POST /devices/{id}/regenerateKey", func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := requestContext(r)
		defer cancel()
		key, err := reg.RegenerateKey(ctx, actor(r), r.PathValue("id"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]string{"deviceId": r.PathValue("id"), "key": key})
		return nil
	})
	s.Handle("POST /digitaltwins/{id}/commands/{name}", func(w http.ResponseWriter, r *http.Request) error {
		var timeout time.Duration
		if v := r.URL.Query().Get("responseTimeoutInSeconds"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return engine.Errorf(engine.KindInvalid, "InvalidArgument", "responseTimeoutInSeconds %q is not a positive integer", v)
			}
			timeout = time.Duration(n) * time.Second
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return engine.Errorf(engine.KindTooLarge, "PayloadTooLarge", "the command payload is too large")
		}
		resp, err := reg.Invoke(r.Context(), r.PathValue("id"), r.PathValue("name"), body, timeout)
		if errors.Is(err, devices.ErrCommandTimeout) {
			w.Header().Set("x-ms-error-code", "GatewayTimeout")
			writeJSON(w, http.StatusGatewayTimeout, errorBody{Error: detailOf(devices.ErrCommandTimeout)})
			return nil
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, resp)
		return nil
	})
}

func deviceNotFound(id string) error {
	return engine.Errorf(engine.KindNotFound, "DeviceNotFound", "device %s is not registered", id)
}
