// Who delivers engraving customer notifications (design ready, no stock, complete, cancelled). No outside service is
// reachable from the plant network by default, so the default sender writes one log line per
// notification saying what would be sent; a plant plugs in its own (mail, SMS, a webhook) with
// setNotificationSender, e.g. from its settings file, and the outbox relay uses it from then on.
import type { CustomerNotification, NotificationSender } from '../../store/engraving-notifications';

let plugged: NotificationSender | undefined;

export function setNotificationSender(sender: NotificationSender | undefined): void {
  plugged = sender;
}

/** The plugged sender, or one that logs what it would send through `log`. */
export function notificationSender(log: (line: string) => void): NotificationSender {
  return plugged ?? logSender(log);
}

export function logSender(log: (line: string) => void): NotificationSender {
  return {
    name: 'log',
    send(n: CustomerNotification): Promise<void> {
      log(
        `notification for customer ${n.customer_id} (not sent: no sender configured): ${n.event} ${JSON.stringify(n.payload)}`,
      );
      return Promise.resolve();
    },
  };
}
