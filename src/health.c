/* health.c - shared layers that stop answering (see health.h). */
#include "config.h"

#include "health.h"
#include "log.h"

#include <errno.h>

struct health {
	char *path;
	gint failing;      /* atomic: 1 between the two log lines */
	gint failed;       /* atomic: requests failed in this episode */
	gint64 last_fail;  /* atomic: monotonic µs of the latest failure */
};

/* An episode ends with a success this long after its latest failure:
 * while a volume is down, answers from its client's caches come between
 * the failures and do not end it. */
#define QUIET_US (5 * G_USEC_PER_SEC)

static struct health *layers;
static int nlayers;

void sfs_health_init(const struct sfs_layers *l)
{
	sfs_health_free();
	layers = g_new0(struct health, l->nlower);
	nlayers = l->nlower;
	for (int i = 0; i < l->nlower; i++)
		layers[i].path = g_strdup(l->lower[i].path);
}

void sfs_health_free(void)
{
	for (int i = 0; i < nlayers; i++)
		g_free(layers[i].path);
	g_free(layers);
	layers = NULL;
	nlayers = 0;
}

/* Errors that say the volume itself is in trouble, not the name asked. */
static bool volume_error(int e)
{
	switch (e) {
	case EIO: case ENOTCONN: case ETIMEDOUT: case EHOSTDOWN:
	case EHOSTUNREACH: case ENETUNREACH: case ENETDOWN: case ECONNRESET:
	case ECONNABORTED: case ECONNREFUSED: case ESHUTDOWN: case EREMOTEIO:
	case ENOLINK:
		return true;
	default:
		return false;
	}
}

void sfs_health_note(int layer, int r)
{
	if (layer < 1 || layer > nlayers)
		return;
	struct health *h = &layers[layer - 1];
	if (r < 0 && volume_error(-r)) {
		__atomic_store_n(&h->last_fail, g_get_monotonic_time(),
				 __ATOMIC_RELAXED);
		g_atomic_int_inc(&h->failed);
		if (g_atomic_int_compare_and_exchange(&h->failing, 0, 1))
			sfs_warn("shared layer %s is not answering (%s): requests "
				 "that need it fail until it recovers",
				 h->path, g_strerror(-r));
		return;
	}
	if (!g_atomic_int_get(&h->failing) ||
	    g_get_monotonic_time() - __atomic_load_n(&h->last_fail,
						     __ATOMIC_RELAXED) < QUIET_US ||
	    !g_atomic_int_compare_and_exchange(&h->failing, 1, 0))
		return;
	gint failed = g_atomic_int_get(&h->failed);
	g_atomic_int_add(&h->failed, -failed);
	sfs_warn("shared layer %s answers again (%d requests failed)", h->path,
		 failed);
}
