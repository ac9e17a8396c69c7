/* Prints sizeof/offsetof of the libsasl2 structures the plugin mirrors in
 * plugin/src/ffi/types.rs, one "name value" per line. */
#include <sasl/sasl.h>
#include <sasl/saslplug.h>
#include <stddef.h>
#include <stdio.h>

#define S(t) printf("size %s %zu\n", #t, sizeof(t))
#define O(t, f) printf("offset %s.%s %zu\n", #t, #f, offsetof(t, f))

int main(void) {
    S(sasl_secret_t); O(sasl_secret_t, data);
    S(sasl_interact_t); O(sasl_interact_t, result); O(sasl_interact_t, len);
    S(sasl_callback_t); O(sasl_callback_t, context);
    S(sasl_security_properties_t);
    S(sasl_utils_t); O(sasl_utils_t, conn); O(sasl_utils_t, malloc); O(sasl_utils_t, free);
    O(sasl_utils_t, getcallback); O(sasl_utils_t, log); O(sasl_utils_t, spare_fptr2);
    S(sasl_out_params_t); O(sasl_out_params_t, doneflag); O(sasl_out_params_t, maxoutbuf);
    O(sasl_out_params_t, mech_ssf); O(sasl_out_params_t, encode); O(sasl_out_params_t, decode);
    O(sasl_out_params_t, param_version);
    S(sasl_client_params_t); O(sasl_client_params_t, utils); O(sasl_client_params_t, ipremoteport);
    O(sasl_client_params_t, props); O(sasl_client_params_t, canon_user); O(sasl_client_params_t, flags);
    O(sasl_client_params_t, param_version);
    S(sasl_client_plug_t); O(sasl_client_plug_t, max_ssf); O(sasl_client_plug_t, features);
    O(sasl_client_plug_t, glob_context); O(sasl_client_plug_t, mech_step); O(sasl_client_plug_t, mech_free);
    O(sasl_client_plug_t, idle); O(sasl_client_plug_t, spare_fptr2);
    return 0;
}
