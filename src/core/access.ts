/**
 * The authorization hook of the core: every adapter asks it before publishing to or binding
 * from a topic exchange, so an ACL written once holds for MQTT and AMQP alike (RabbitMQ topic
 * permissions). Implementations live in auth/; the core only defines the question.
 */

export interface AccessSubject {
  readonly username: string | undefined;
  /** MQTT client id, or the AMQP connection name. */
  readonly clientId: string;
  readonly vhost: string;
}

export interface AccessControl {
  /** May the subject publish to `exchange` with `routingKey`? */
  canPublish(who: AccessSubject, exchange: string, routingKey: string): boolean;
  /** May the subject bind `bindingKey` from `exchange` to a queue it reads? */
  canSubscribe(who: AccessSubject, exchange: string, bindingKey: string): boolean;
}
