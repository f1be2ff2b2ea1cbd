/* conn: a loop's clients, their idle order and their end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "select_server/conn.h"

void conns_init(struct conns *cs, struct server *srv, struct stats_own *me)
{
    memset(cs, 0, sizeof *cs);
    cs->srv = srv;
    cs->me = me;
}

static void list_unlink(struct conns *cs, struct conn *c)
{
    *(c->prev ? &c->prev->next : &cs->head) = c->next;
    *(c->next ? &c->next->prev : &cs->tail) = c->prev;
    c->prev = c->next = NULL;
}

static void list_append(struct conns *cs, struct conn *c)
{
    c->prev = cs->tail;
    c->next = NULL;
    *(cs->tail ? &cs->tail->next : &cs->head) = c;
    cs->tail = c;
}

struct conn *conn_accept(struct conns *cs, int fd, const char *peer, size_t size,
                         const char *no_room)
{
    struct server *srv = cs->srv;
    /* take a seat first: with --workers the count is shared */
    if (stats_seat_take(srv->st, cs->me, srv->o.max_clients) == -1) {
        server_refuse(srv, fd, peer, NULL);
        return NULL;
    }
    struct conn *c = no_room == NULL ? calloc(1, size) : NULL;
    if (c == NULL) {
        stats_seat_give(srv->st, cs->me);
        server_refuse(srv, fd, peer, no_room != NULL ? no_room : "out of memory");
        return NULL;
    }
    c->fd = fd;
    c->id = stats_number(srv->st);
    c->last_active = cs->now;
    proto_init(&c->proto, srv->o.mode, srv->o.max_frame);
    chat_in_init(&c->chat, srv->o.max_frame);
    list_append(cs, c);
    cs->n++;
    log_client_start(c->id, peer);
    return c;
}

void conn_touch(struct conns *cs, struct conn *c)
{
    c->last_active = cs->now;
    if (cs->srv->o.idle_timeout > 0 && c != cs->tail) {
        list_unlink(cs, c);
        list_append(cs, c);
    }
}

void conn_got(struct conns *cs, struct conn *c, size_t n)
{
    c->bytes += n;
    if (cs->me != NULL)
        atomic_fetch_add_explicit(&cs->me->bytes, n, memory_order_relaxed);
    conn_touch(cs, c);
}

void conn_set_reason(struct conn *c, const char *why)
{
    if (c->reason == NULL && why != NULL)
        c->reason = strdup(why);
}

void conn_kill(struct conns *cs, struct conn *c, const char *why)
{
    if (c->flags & CONN_CLOSE_ASAP)
        return;
    conn_set_reason(c, why);
    c->flags |= CONN_CLOSE_ASAP;
    c->dead_next = cs->dead;
    cs->dead = c;
}

void conn_end(struct conns *cs, struct conn *c)
{
    struct server *srv = cs->srv;
    log_client_end(c->id, c->bytes, c->reason, srv->access_fd);
    if (cs->me != NULL)
        atomic_fetch_sub(&cs->me->bytes, c->bytes);
    atomic_fetch_add(&srv->st->bytes, c->bytes);
    stats_seat_give(srv->st, cs->me);
    list_unlink(cs, c);
    cs->n--;
}

void conn_free(struct conn *c)
{
    close(c->fd);
    buf_free(&c->out);
    proto_free(&c->proto);
    chat_in_free(&c->chat);
    free(c->reason);
    free(c);
}

void conns_reap(struct conns *cs, conn_close_fn close_fn)
{
    while (cs->dead != NULL) {
        struct conn *c = cs->dead;
        cs->dead = c->dead_next;
        close_fn(c);
    }
}

void conns_expire(struct conns *cs, conn_close_fn close_fn)
{
    const struct opts *o = &cs->srv->o;
    int64_t idle_ms = (int64_t)o->idle_timeout * 1000;
    while (idle_ms > 0 && cs->head != NULL && cs->now - cs->head->last_active >= idle_ms) {
        char why[64];
        snprintf(why, sizeof why, "idle for %u s (--idle-timeout)", o->idle_timeout);
        conn_set_reason(cs->head, why);
        close_fn(cs->head);
    }
    if (cs->draining && server_drain_over(cs->drain_deadline)) {
        char why[64];
        snprintf(why, sizeof why, "drain time of %u s ran out", o->drain);
        while (cs->head != NULL) {
            conn_set_reason(cs->head, why);
            close_fn(cs->head);
        }
    }
}

int conns_next_timeout(struct conns *cs)
{
    const struct opts *o = &cs->srv->o;
    int64_t t = -1;
    if (o->idle_timeout > 0 && cs->head != NULL)
        t = cs->head->last_active + (int64_t)o->idle_timeout * 1000 - cs->now;
    if (cs->draining && (t < 0 || cs->drain_deadline - cs->now < t))
        t = cs->drain_deadline - cs->now;
    int paused = cs->draining ? -1 : server_paused_ms(cs->srv);
    if (paused >= 0 && (t < 0 || paused < t))
        t = paused;
    return t < 0 ? -1 : (int)(t > 0 ? t : 0);
}
